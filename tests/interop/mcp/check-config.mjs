// Connects to a sandbox exactly as an MCP client configuration says ({"mcpServers": {"sandbox": …}},
// the README's snippets), lists the tools and runs one command. Run by McpTests.
//   node check-config.mjs CONFIG.json
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const server = JSON.parse(readFileSync(process.argv[2], "utf8")).mcpServers.sandbox;
const transport = server.url
  ? new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: server.headers ?? {} } })
  : new StdioClientTransport({ command: server.command, args: server.args ?? [], env: { ...process.env, ...(server.env ?? {}) }, stderr: "inherit" });
const client = new Client({ name: "hive-check-config", version: "1.0.0" });
try {
  await client.connect(transport);
  const { tools } = await client.listTools();
  assert.equal(tools.length, 14);
  const r = await client.callTool({ name: "exec", arguments: { command: "echo configured" } });
  assert.equal(r.structuredContent.stdout, "configured\n");
  console.log(`ok ${server.url ? "http" : "stdio"}`);
  await client.close();
  process.exit(0);
} catch (e) {
  console.log(`FAILED: ${e.message}`);
  process.exit(1);
}
