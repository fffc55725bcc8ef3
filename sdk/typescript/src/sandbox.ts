import type { EventsOptions, ExecOptions, ExecResult, FileEntry, SandboxEvent, SandboxInfo } from "./types.js";
import { ExecStream } from "./exec-stream.js";
import { events } from "./events.js";
import { Http } from "./http.js";

function toStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

/** One sandbox: run commands, move files, watch its audit trail. Get one from a Hive client. */
export class Sandbox {
  readonly #http: Http;
  #info: SandboxInfo;

  constructor(http: Http, info: SandboxInfo) {
    this.#http = http;
    this.#info = info;
  }

  get name(): string {
    return this.#info.id;
  }

  get id(): string {
    return this.#info.id;
  }

  /** The last known description (refresh() fetches a new one). */
  get info(): SandboxInfo {
    return this.#info;
  }

  /** Absolute URL of port 8080 inside the sandbox (the MCP server in the default image); needs the API key. */
  get url(): string {
    return this.#http.baseUrl + this.#info.url;
  }

  /** Absolute URL of the sandbox's MCP endpoint (Streamable HTTP). */
  get mcpUrl(): string {
    return this.#http.baseUrl + this.#info.mcp_url;
  }

  get #path(): string {
    return `/api/v1/hiveboxes/${encodeURIComponent(this.#info.id)}`;
  }

  async refresh(): Promise<SandboxInfo> {
    this.#info = await this.#http.json<SandboxInfo>("GET", this.#path);
    return this.#info;
  }

  /** Runs `/bin/sh -c command` and waits for it. A non-zero exit code is a result, not an error. */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const body: Record<string, unknown> = { command };
    if (options.cwd !== undefined) body.cwd = options.cwd;
    if (options.env !== undefined) body.env = options.env;
    if (options.timeout !== undefined) body.timeout = options.timeout;
    if (options.stdin !== undefined) body.stdin = options.stdin;
    const r = await this.#http.json<Record<string, unknown>>("POST", `${this.#path}/exec`, body, options.signal);
    return {
      exitCode: r.exit_code as number,
      stdout: r.stdout as string,
      stderr: r.stderr as string,
      durationMs: r.duration_ms as number,
      timedOut: r.timed_out as boolean,
      oomKilled: r.oom_killed as boolean,
      signal: (r.signal as number | null | undefined) ?? null,
    };
  }

  /** Starts a command and streams: stdout/stderr as they are produced, stdin open until end(), exit as a promise. */
  execStream(command: string, options: Omit<ExecOptions, "stdin"> = {}): ExecStream {
    const abort = new AbortController();
    options.signal?.addEventListener("abort", () => abort.abort(), { once: true });
    const body: Record<string, unknown> = { command };
    if (options.cwd !== undefined) body.cwd = options.cwd;
    if (options.env !== undefined) body.env = options.env;
    if (options.timeout !== undefined) body.timeout = options.timeout;
    const response = this.#http.send("POST", `${this.#path}/exec/stream`, {
      body: JSON.stringify(body),
      headers: { "Content-Type": "application/json" },
      signal: abort.signal,
    });
    return new ExecStream(this.#http, this.#info.id, response, abort);
  }

  /** A file's bytes; with `encoding: "utf8"`, its text. */
  async readFile(path: string): Promise<Uint8Array>;
  async readFile(path: string, options: { encoding: "utf8" }): Promise<string>;
  async readFile(path: string, options?: { encoding?: "utf8" }): Promise<Uint8Array | string> {
    const response = await this.#http.send("GET", `${this.#path}/files?path=${encodeURIComponent(path)}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    return options?.encoding === "utf8" ? new TextDecoder().decode(bytes) : bytes;
  }

  /** A file as a stream (any size, constant memory). */
  async readFileStream(path: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.#http.send("GET", `${this.#path}/files?path=${encodeURIComponent(path)}`);
    return response.body!;
  }

  /** Writes a file (parents created; it appears whole): a string (UTF-8), bytes, or a stream of bytes. */
  async writeFile(path: string, data: string | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): Promise<{ path: string; size: number }> {
    let body: BodyInit;
    let duplex = false;
    if (typeof data === "string") body = new TextEncoder().encode(data);
    else if (data instanceof Uint8Array) body = data as Uint8Array<ArrayBuffer>;
    else {
      body = data instanceof ReadableStream ? data : toStream(data);
      duplex = true;
    }
    const response = await this.#http.send("PUT", `${this.#path}/files?path=${encodeURIComponent(path)}`, {
      body,
      headers: { "Content-Type": "application/octet-stream" },
      duplex,
    });
    return (await response.json()) as { path: string; size: number };
  }

  /** Recursive listing (symlinks not followed). */
  async listFiles(path = "/"): Promise<FileEntry[]> {
    const r = await this.#http.json<{ entries: FileEntry[] }>("GET", `${this.#path}/files/list?path=${encodeURIComponent(path)}`);
    return r.entries;
  }

  /** The audit trail: history, then (follow, the default) live — resumed exactly after a dropped connection. */
  events(options: EventsOptions = {}): AsyncGenerator<SandboxEvent> {
    return events(this.#http, `${this.#path}/events`, options);
  }

  /** Destroys the sandbox: container, mounts, network — everything but its workspace files and event log. */
  async destroy(): Promise<void> {
    await this.#http.json("DELETE", this.#path);
  }
}
