// A stateful agent in a Hive sandbox. Each run gets (or re-creates) the sandbox "stateful-agent",
// whose /workspace keeps its files between runs — even after the sandbox is destroyed — and then
// prints what this run did, from the sandbox's audit trail.
//
//   npm install && npm start                 # against `make up` (http://localhost:7070)
//   HIVE_URL=… HIVEBOX_API_KEY=… npm start -- my-agent --keep
import * as hive from "hive";

const name = process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "stateful-agent";
const keep = process.argv.includes("--keep");

const sandbox = await hive.getOrCreateSandbox(name, {
  fs: [{
    backend: "local",
    mount: "/workspace",
    acls: [
      { path: "/workspace/**", access: "rw" },
      { path: "/workspace/secrets/**", access: "deny" },
    ],
  }],
});

// Where does the audit trail of this run start?
let since = 0;
for await (const e of sandbox.events({ follow: false })) since = e.seq;

// The agent's "work": keep a journal across runs and write a note per run.
const journal = await sandbox.exec("echo \"run at $(date -u +%FT%TZ)\" >> /workspace/journal.txt && wc -l < /workspace/journal.txt");
const run = Number(journal.stdout.trim());
await sandbox.writeFile(`/workspace/notes/run-${run}.md`, `# Run ${run}\n\nThe journal has ${run} entr${run === 1 ? "y" : "ies"}.\n`);
const notes = await sandbox.exec("ls /workspace/notes | sort | tr '\\n' ' '");
const peek = await sandbox.exec("cat /workspace/secrets/key 2>&1 || true"); // denied by the ACL
console.log(`run ${run} of "${name}": notes so far: ${notes.stdout.trim()}`);
console.log(`reading /workspace/secrets/key: ${peek.stdout.trim()}`);

// The audit trail of this run: commands, files written, denials. Followed live until the last
// command's exit is on record (events become durable a few milliseconds after the fact).
console.log("audit trail:");
const stop = new AbortController();
for await (const e of sandbox.events({ since, kinds: ["exec.finished", "artifact", "fs"], signal: stop.signal })) {
  if (e.kind === "exec.finished") console.log(`  #${e.seq} exec  exit ${e.exit_code}: ${e.command}`);
  else if (e.kind === "artifact.written") console.log(`  #${e.seq} wrote ${e.path} (${e.size} B, sha256 ${String(e.sha256).slice(0, 12)}…)`);
  else if (e.kind === "fs.rename" && e.decision === "allow") console.log(`  #${e.seq} renamed ${e.path} -> ${e.target}`);
  else if (e.decision?.startsWith("deny")) console.log(`  #${e.seq} DENIED ${e.kind} ${e.path}`);
  if (e.kind === "exec.finished" && String(e.command).includes("/workspace/secrets/key")) stop.abort();
}

if (!keep) {
  await sandbox.destroy(); // the workspace stays; the next run finds its files
  console.log(`sandbox destroyed; /workspace is kept for the next run`);
}
