// Drives a Hive sandbox's MCP server with the official TypeScript SDK and checks every tool with
// valid and invalid input. Run by tests/Hive.Integration.Tests (McpTests):
//   node check-tools.mjs --http URL [--token KEY]
//   node check-tools.mjs --stdio COMMAND [ARGS...]        (HIVEBOX_API_KEY etc. from the environment)
// The sandbox must have a workspace at /workspace with /workspace/secrets/** denied and a file
// /workspace/secrets/token. Prints "ok N checks" and exits 0, or the first failure and exits 1.
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const args = process.argv.slice(2);
let transport;
if (args[0] === "--http") {
  const headers = args[2] === "--token" ? { Authorization: `Bearer ${args[3]}` } : {};
  transport = new StreamableHTTPClientTransport(new URL(args[1]), { requestInit: { headers } });
} else if (args[0] === "--stdio") {
  transport = new StdioClientTransport({ command: args[1], args: args.slice(2), env: process.env, stderr: "inherit" });
} else {
  console.error("usage: check-tools.mjs --http URL [--token KEY] | --stdio COMMAND [ARGS...]");
  process.exit(2);
}

const client = new Client({ name: "hive-check-tools", version: "1.0.0" });
let checks = 0;
const check = (cond, what) => { assert.ok(cond, what); checks++; };
const dir = `/workspace/mcp-${process.pid}`;

async function call(name, args) {
  return client.callTool({ name, arguments: args });
}
async function ok(name, args) {
  const r = await call(name, args);
  check(!r.isError, `${name} ${JSON.stringify(args)} should succeed, got ${JSON.stringify(r.content)}`);
  return r;
}
async function fails(name, args, pattern) {
  const r = await call(name, args);
  check(r.isError === true, `${name} ${JSON.stringify(args)} should be an error result, got ${JSON.stringify(r)}`);
  const text = r.content.map((c) => c.text ?? "").join(" ");
  check(pattern.test(text), `${name} error should match ${pattern}: ${text}`);
  return r;
}
const text = (r) => r.content.filter((c) => c.type === "text").map((c) => c.text).join("");

try {
  await client.connect(transport);
  const info = client.getServerVersion();
  check(info?.name === "hive-sandbox", `server name: ${JSON.stringify(info)}`);

  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, ["create_directory", "directory_tree", "edit_file", "exec", "get_file_info", "glob", "list_directory",
    "list_directory_with_sizes", "move_file", "read_file", "read_media_file", "read_multiple_files", "search_files", "write_file"]);
  checks++;
  for (const t of tools) {
    check(t.description && t.description.length > 20, `${t.name} has a description`);
    check(t.inputSchema?.type === "object", `${t.name} has an object input schema`);
    for (const [p, s] of Object.entries(t.inputSchema.properties ?? {})) check(s.description, `${t.name}.${p} is described`);
  }

  // exec
  let r = await ok("exec", { command: "echo hi; echo err >&2; exit 3" });
  check(r.structuredContent.exit_code === 3 && r.structuredContent.stdout === "hi\n" && r.structuredContent.stderr === "err\n", `exec result ${JSON.stringify(r.structuredContent)}`);
  r = await ok("exec", { command: "pwd; echo $FOO", cwd: "/tmp", env: { FOO: "bar" } });
  check(r.structuredContent.stdout === "/tmp\nbar\n", "exec cwd and env");
  r = await ok("exec", { command: "sleep 5", timeout_seconds: 0.5 });
  check(r.structuredContent.timed_out === true, "exec timeout");
  await fails("exec", {}, /'command' is required/);
  await fails("exec", { command: 42 }, /'command' must be string/);

  // write_file / read_file
  r = await ok("write_file", { path: `${dir}/a.txt`, content: "line1\nline2\nline3\n" });
  check(r.structuredContent.bytes === 18 && r.structuredContent.created === true, "write_file result");
  await fails("write_file", { path: "relative.txt", content: "x" }, /absolute/);
  check(text(await ok("read_file", { path: `${dir}/a.txt` })) === "line1\nline2\nline3\n", "read_file");
  check(text(await ok("read_file", { path: `${dir}/a.txt`, head: 1 })) === "line1", "read_file head");
  check(text(await ok("read_file", { path: `${dir}/a.txt`, tail: 2 })) === "line2\nline3", "read_file tail");
  await fails("read_file", { path: "/workspace/secrets/token" }, /permission denied/);
  await fails("read_file", { path: `${dir}/a.txt`, head: 1, tail: 1 }, /either/);

  // read_multiple_files
  r = await ok("read_multiple_files", { paths: [`${dir}/a.txt`, `${dir}/missing.txt`] });
  check(r.structuredContent.files[0].content.startsWith("line1") && /no such file/.test(r.structuredContent.files[1].error), "read_multiple_files");
  await fails("read_multiple_files", { paths: [] }, /at least one/);

  // edit_file
  r = await ok("edit_file", { path: `${dir}/a.txt`, old_text: "line2", new_text: "LINE2" });
  check(r.structuredContent.replacements === 1, "edit_file replaced once");
  await fails("edit_file", { path: `${dir}/a.txt`, old_text: "line", new_text: "x" }, /occurs 2 times/);
  await fails("edit_file", { path: `${dir}/a.txt`, old_text: "absent", new_text: "x" }, /not found/);

  // list_directory (denied entries are hidden)
  r = await ok("list_directory", { path: dir });
  check(r.structuredContent.entries.some((e) => e.name === "a.txt" && e.type === "file"), "list_directory");
  r = await ok("list_directory", { path: "/workspace" });
  check(!r.structuredContent.entries.some((e) => e.name === "secrets"), "denied entries are hidden");
  await fails("list_directory", { path: "/no/such/dir" }, /no such directory/);

  // create_directory, directory_tree
  r = await ok("create_directory", { path: `${dir}/d1/d2` });
  check(r.structuredContent.created === true, "create_directory");
  await fails("create_directory", { path: `${dir}/a.txt` }, /is a file/);
  r = await ok("directory_tree", { path: dir });
  check(r.structuredContent.children.some((c) => c.name === "d1" && c.children[0].name === "d2"), "directory_tree");
  await fails("directory_tree", { path: dir, max_depth: 0 }, /max_depth/);

  // search_files, glob
  r = await ok("search_files", { pattern: "LINE\\d", path: dir });
  check(r.structuredContent.matches.length === 1 && r.structuredContent.matches[0].line === 2, `search_files ${JSON.stringify(r.structuredContent)}`);
  r = await ok("search_files", { pattern: "s3cr3t", path: "/workspace" });
  check(r.structuredContent.matches.length === 0, "search never reads denied files");
  await fails("search_files", { pattern: "(", path: dir }, /invalid regular expression/);
  r = await ok("glob", { pattern: "**/*.txt", path: "/workspace" });
  check(r.structuredContent.paths.includes(`${dir}/a.txt`) && !r.structuredContent.paths.some((p) => p.includes("secrets")), "glob");
  await fails("glob", { pattern: "{a,b}.txt", path: dir }, /invalid pattern/);
  await ok("write_file", { path: `${dir}/.gitignore`, content: "# build output\nignored/\n*.log\n!keep.log\n" });
  for (const f of ["ignored/x.txt", "debug.log", "keep.log", "src/main.ts", "src/util.ts"]) await ok("write_file", { path: `${dir}/${f}`, content: f });
  r = await ok("glob", { pattern: "**/*", path: dir, respect_gitignore: true });
  const seen = r.structuredContent.paths.map((p) => p.slice(dir.length + 1));
  check(seen.includes("keep.log") && seen.includes("src/main.ts") && !seen.includes("debug.log") && !seen.some((p) => p.startsWith("ignored")), `glob honours .gitignore: ${seen}`);
  r = await ok("glob", { pattern: "**/*.ts", path: dir });
  assert.deepEqual(r.structuredContent.paths, [`${dir}/src/main.ts`, `${dir}/src/util.ts`]); checks++;
  r = await ok("glob", { pattern: "*.log", path: dir });
  check(r.structuredContent.paths.length === 2, "glob without gitignore sees everything");

  // get_file_info, list_directory_with_sizes
  r = await ok("get_file_info", { path: `${dir}/a.txt` });
  check(r.structuredContent.type === "file" && r.structuredContent.size === 18, `get_file_info ${JSON.stringify(r.structuredContent)}`);
  await fails("get_file_info", { path: `${dir}/nope` }, /no such file/);
  await ok("write_file", { path: `${dir}/big.bin`, content: "x".repeat(3000) });
  r = await ok("list_directory_with_sizes", { path: dir, sort_by: "size" });
  const big = r.structuredContent.entries[0];
  const totalBytes = r.structuredContent.entries.reduce((n, e) => n + (e.size ?? 0), 0);
  check(big.name === "big.bin" && big.size === 3000 && big.size_human === "2.9 KB" && r.structuredContent.total_bytes === totalBytes && r.structuredContent.files >= 2, `sizes ${JSON.stringify(r.structuredContent)}`);
  await fails("list_directory_with_sizes", { path: dir, sort_by: "colour" }, /sort_by/);

  // move_file
  await ok("move_file", { source: `${dir}/a.txt`, destination: `${dir}/b.txt` });
  check(text(await ok("read_file", { path: `${dir}/b.txt`, head: 1 })) === "line1", "moved");
  await fails("move_file", { source: `${dir}/a.txt`, destination: `${dir}/c.txt` }, /no such file/);
  await fails("move_file", { source: "/workspace/secrets/token", destination: `${dir}/stolen` }, /permission denied|no such file/);

  // read_media_file: the MIME type comes from the content, not the name
  await ok("exec", { command: `python3 -c "import base64,sys; open('${dir}/pic.dat','wb').write(base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=='))"` });
  r = await ok("read_media_file", { path: `${dir}/pic.dat` });
  check(r.content[0].type === "image" && r.content[0].mimeType === "image/png" && r.content[0].data.startsWith("iVBORw0KGgo"), `read_media_file ${JSON.stringify(r.content[0]).slice(0, 200)}`);
  await ok("exec", { command: `python3 -c "import wave; w=wave.open('${dir}/sound.bin','wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(bytes(1600)); w.close()"` });
  r = await ok("read_media_file", { path: `${dir}/sound.bin` });
  check(r.content[0].type === "audio" && r.content[0].mimeType === "audio/wav", "audio");
  await fails("read_media_file", { path: `${dir}/b.txt` }, /not an image or audio/);

  await ok("exec", { command: `rm -rf ${dir}` });
  console.log(`ok ${checks} checks`);
  await client.close();
  process.exit(0);
} catch (e) {
  console.log(`FAILED after ${checks} checks: ${e.message}`);
  try { await client.close(); } catch {}
  process.exit(1);
}
