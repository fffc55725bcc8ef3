// grpc-js server for the reverse direction: prints "listening <port>" and serves until stdin closes.
'use strict';
const { grpc, Echo } = require('./echo');

const server = new grpc.Server();
server.addService(Echo.service, {
  say: (call, cb) => cb(null, { text: call.request.text, index: 0 }),
  fail: (call, cb) => cb({ code: grpc.status.PERMISSION_DENIED, details: 'denied: ' + call.request.text }),
  count: (call) => {
    for (let i = 0; i < call.request.count; i++) call.write({ text: call.request.text, index: i });
    call.end();
  },
  collect: (call, cb) => {
    let text = '';
    let n = 0;
    call.on('data', (r) => { text += r.text; n++; });
    call.on('end', () => cb(null, { text, index: n }));
  },
});
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) { console.error(err); process.exit(1); }
  console.log('listening ' + port);
});
process.stdin.resume();
process.stdin.on('end', () => server.forceShutdown());
