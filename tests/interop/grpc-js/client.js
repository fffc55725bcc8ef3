// grpc-js client against a Hive.Wire server: node client.js <target>   (unix:/path or 127.0.0.1:port)
// Prints "ok <check>" per passed check; exits non-zero on the first failure.
'use strict';
const assert = require('assert');
const { grpc, Echo } = require('./echo');

const target = process.argv[2];
const client = new Echo(target, grpc.credentials.createInsecure());
const deadline = (ms) => ({ deadline: new Date(Date.now() + ms) });

const unary = (method, req, opts = deadline(10000)) =>
  new Promise((resolve, reject) => client[method](req, opts, (err, res) => (err ? reject(err) : resolve(res))));

async function main() {
  const said = await unary('say', { text: 'héllo, wire' });
  assert.strictEqual(said.text, 'héllo, wire');
  console.log('ok unary');

  await assert.rejects(unary('fail', { text: 'no such thing: ünïcode' }), (err) => {
    assert.strictEqual(err.code, grpc.status.NOT_FOUND);
    assert.strictEqual(err.details, 'no such thing: ünïcode');
    return true;
  });
  console.log('ok error');

  const replies = [];
  await new Promise((resolve, reject) => {
    const call = client.count({ text: 'n', count: 50 }, deadline(10000));
    call.on('data', (r) => replies.push(r));
    call.on('error', reject);
    call.on('end', resolve);
  });
  assert.strictEqual(replies.length, 50);
  assert.deepStrictEqual(replies.map((r) => r.index), [...Array(50).keys()]);
  console.log('ok server-streaming');

  const collected = await new Promise((resolve, reject) => {
    const call = client.collect(deadline(10000), (err, res) => (err ? reject(err) : resolve(res)));
    for (const word of ['a', 'b', 'c', 'd']) call.write({ text: word });
    call.end();
  });
  assert.strictEqual(collected.text, 'abcd');
  assert.strictEqual(collected.index, 4);
  console.log('ok client-streaming');

  await assert.rejects(unary('say', { text: 'slow', delayMs: 5000 }, deadline(300)), (err) => {
    assert.strictEqual(err.code, grpc.status.DEADLINE_EXCEEDED);
    return true;
  });
  console.log('ok deadline');
  client.close();
}

main().catch((err) => {
  console.error('FAILED:', err && err.stack ? err.stack : err);
  process.exit(1);
});
