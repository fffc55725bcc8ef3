// The TypeScript SDK against a real Controller and real sandboxes (run by tests/Hive.Integration.Tests
// with HIVE_URL and HIVEBOX_API_KEY set): npm test
import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { randomBytes } from "node:crypto";
import * as hive from "../dist/index.js";
import { Hive, NotFoundError, AuthError, PolicyError, ApiError } from "../dist/index.js";

const name = `ts-sdk-${process.pid}`;
const created = [];
after(async () => {
  for (const n of created) await hive.getSandbox(n).then((s) => s.destroy()).catch(() => {});
});

test("getOrCreateSandbox twice returns the same sandbox; a different config is a PolicyError naming it", async () => {
  const config = { memory: "256m", fs: [{ backend: "local", mount: "/workspace", acls: [{ path: "/workspace/**", access: "rw" }] }] };
  const a = await hive.getOrCreateSandbox(name, config);
  created.push(name);
  const b = await hive.getOrCreateSandbox(name, config);
  assert.equal(a.name, name);
  assert.equal(b.info.created_at, a.info.created_at);
  assert.equal(a.url, `${new Hive().url}/api/v1/hiveboxes/${name}/proxy/8080/`);
  assert.equal(a.mcpUrl, `${new Hive().url}/api/v1/hiveboxes/${name}/mcp`);
  await assert.rejects(hive.getOrCreateSandbox(name, { ...config, memory: "512m" }), (e) => e instanceof PolicyError && e.status === 409 && /memory/.test(e.message));
  assert.ok((await hive.listSandboxes()).some((s) => s.name === name));
});

test("exec returns output, exit code and duration", async () => {
  const sandbox = await hive.getSandbox(name);
  const r = await sandbox.exec("python3 -c 'print(1+1)'");
  assert.deepEqual([r.exitCode, r.stdout, r.stderr], [0, "2\n", ""]);
  assert.ok(r.durationMs >= 0);
  const failed = await sandbox.exec("echo oops >&2; exit 3", { cwd: "/tmp", env: { X: "1" } });
  assert.deepEqual([failed.exitCode, failed.stderr], [3, "oops\n"]);
  const slow = await sandbox.exec("sleep 5", { timeout: 0.5 });
  assert.equal(slow.timedOut, true);
});

test("execStream streams output as it comes and takes stdin", async () => {
  const sandbox = await hive.getSandbox(name);
  const upper = sandbox.execStream("tr a-z A-Z");
  await upper.stdin.write("hello ");
  await upper.stdin.end("world\n");
  let text = "";
  for await (const chunk of upper.stdout) text += new TextDecoder().decode(chunk);
  assert.equal(text, "HELLO WORLD\n");
  assert.equal((await upper.exit).exitCode, 0);

  // The first line arrives while the command is still blocked: output streams, it is not buffered.
  const ticks = sandbox.execStream("echo tick 1; while [ ! -e /tmp/go-ts ]; do sleep 0.05; done; echo tick 2; echo done >&2; exit 4");
  const iterator = ticks.stdout[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal(new TextDecoder().decode(first.value), "tick 1\n");
  await sandbox.exec("touch /tmp/go-ts");
  let rest = "";
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest += new TextDecoder().decode(r.value);
  let err = "";
  for await (const chunk of ticks.stderr) err += new TextDecoder().decode(chunk);
  const exit = await ticks.exit;
  assert.equal(rest, "tick 2\n");
  assert.equal(err, "done\n");
  assert.equal(exit.exitCode, 4);

  const endless = sandbox.execStream("sleep 600");
  await endless.id;
  endless.kill();
  await assert.rejects(endless.exit);
});

test("binary files round-trip: bytes, strings and streams", async () => {
  const sandbox = await hive.getSandbox(name);
  const bytes = randomBytes(1024 * 1024 + 7);
  await sandbox.writeFile("/workspace/blob.bin", bytes);
  assert.deepEqual(Buffer.from(await sandbox.readFile("/workspace/blob.bin")), bytes);
  await sandbox.writeFile("/workspace/notes.txt", "héllo\n");
  assert.equal(await sandbox.readFile("/workspace/notes.txt", { encoding: "utf8" }), "héllo\n");
  async function* parts() {
    for (let i = 0; i < 4; i++) yield new TextEncoder().encode(`part ${i}\n`);
  }
  await sandbox.writeFile("/workspace/streamed.txt", parts());
  const chunks = [];
  for await (const c of await sandbox.readFileStream("/workspace/streamed.txt")) chunks.push(Buffer.from(c));
  assert.equal(Buffer.concat(chunks).toString(), "part 0\npart 1\npart 2\npart 3\n");
  const listing = await sandbox.listFiles("/workspace");
  assert.ok(listing.some((e) => e.name === "blob.bin" && e.size === bytes.length));
  await assert.rejects(sandbox.readFile("/workspace/missing"), NotFoundError);
});

test("events: history, live, and an exact resume after the connection drops", async () => {
  // A TCP relay we can cut, between the SDK and the Controller.
  const target = new URL(new Hive().url);
  const sockets = new Set();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 80), target.hostname);
    client.pipe(upstream).pipe(client);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    }
  });
  await new Promise((resolve) => relay.listen(0, "127.0.0.1", resolve));
  try {
    const viaRelay = await new Hive({ url: `http://127.0.0.1:${relay.address().port}` }).getSandbox(name);
    const sandbox = await hive.getSandbox(name);
    await sandbox.exec("echo first");
    const seen = [];
    const abort = new AbortController();
    let cut = false;
    for await (const e of viaRelay.events({ kinds: ["exec"], signal: abort.signal })) {
      seen.push(e);
      if (e.kind === "exec.finished" && e.command === "echo first" && !cut) {
        cut = true;
        for (const s of sockets) s.destroy(); // the connection drops…
        await sandbox.exec("echo second"); // …while something happens
      }
      if (e.kind === "exec.finished" && e.command === "echo second") break;
    }
    abort.abort();
    const seqs = seen.map((e) => e.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b), "no event twice, in order");
    assert.ok(seen.some((e) => e.kind === "exec.started" && e.command === "echo second"), "nothing lost across the drop");
    const history = [];
    for await (const e of sandbox.events({ kinds: ["exec"], follow: false })) history.push(e.seq);
    assert.deepEqual(seqs, history.filter((s) => s <= seqs.at(-1)), "the live view equals the history");
    const since = [];
    for await (const e of sandbox.events({ kinds: ["exec"], follow: false, since: seqs[1] })) since.push(e.seq);
    assert.equal(since[0], seqs[2]);
  } finally {
    relay.close();
  }
});

test("every error type", async () => {
  await assert.rejects(hive.getSandbox("no-such-sandbox"), (e) => e instanceof NotFoundError && e.status === 404 && /not found/.test(e.message));
  await assert.rejects(new Hive({ apiKey: "wrong-key-123456" }).listSandboxes(), (e) => e instanceof AuthError && e.status === 401);
  await assert.rejects(hive.createSandbox({ name: "Bad Name!" }), (e) => e instanceof ApiError && !(e instanceof PolicyError) && e.status === 400 && /name/.test(e.message));
  await assert.rejects(hive.createSandbox({ name }), (e) => e instanceof PolicyError && /already exists/.test(e.message));
  await assert.rejects(new Hive({ url: "http://127.0.0.1:1" }).listSandboxes(), (e) => e instanceof ApiError && e.status === 0 && /cannot reach/.test(e.message));
});

test("destroy", async () => {
  const sandbox = await hive.getSandbox(name);
  await sandbox.destroy();
  await assert.rejects(hive.getSandbox(name), NotFoundError);
  created.length = 0;
});

test("secrets are bound to hosts, listed without values, and re-bound without the value", async () => {
  const secret = `ts-sdk-secret-${process.pid}`;
  const value = `sk-ts-${randomBytes(8).toString("hex")}`;
  const client = new Hive();
  try {
    const stored = await client.setSecret(secret, { value, hosts: ["api.example.test"] });
    assert.deepEqual([stored.name, stored.hosts, stored.allow_http], [secret, ["api.example.test"], false]);
    const rebound = await client.setSecret(secret, { hosts: ["*.example.test"], allowHttp: true });
    assert.deepEqual([rebound.hosts, rebound.allow_http], [["*.example.test"], true]);
    const listed = await client.listSecrets();
    assert.deepEqual(listed.find((s) => s.name === secret)?.hosts, ["*.example.test"]);
    assert.ok(!JSON.stringify(listed).includes(value));
    await assert.rejects(client.setSecret(`${secret}-x`, { value, hosts: [] }), (e) => e instanceof ApiError && e.status === 400 && /hosts/.test(e.message));
  } finally {
    await client.deleteSecret(secret);
  }
});
