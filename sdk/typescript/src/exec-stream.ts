import type { ExecResult } from "./types.js";
import { Http, lines } from "./http.js";

/** A queue that is an async iterable: output chunks as they come. */
class Chunks implements AsyncIterable<Uint8Array> {
  #items: Uint8Array[] = [];
  #waiting: ((r: IteratorResult<Uint8Array>) => void) | null = null;
  #done = false;

  push(chunk: Uint8Array): void {
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve({ value: chunk, done: false });
    } else this.#items.push(chunk);
  }

  end(): void {
    this.#done = true;
    if (this.#waiting) {
      const resolve = this.#waiting;
      this.#waiting = null;
      resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const item = this.#items.shift();
        if (item) return Promise.resolve({ value: item, done: false });
        if (this.#done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.#waiting = resolve));
      },
    };
  }
}

export interface ExitStatus extends Omit<ExecResult, "stdout" | "stderr"> {
  stdoutBytes: number;
  stderrBytes: number;
}

/**
 * A running command: stdout and stderr as async iterables of bytes, stdin writable, the exit as a
 * promise. Aborting (or kill()) ends the command's whole process group.
 */
export class ExecStream {
  readonly stdout: AsyncIterable<Uint8Array>;
  readonly stderr: AsyncIterable<Uint8Array>;
  /** Resolves with the exit status once the command has ended and all output was delivered. */
  readonly exit: Promise<ExitStatus>;
  /** The command's id (for stdin), once it has started. */
  readonly id: Promise<string>;
  readonly stdin: { write(data: string | Uint8Array): Promise<void>; end(data?: string | Uint8Array): Promise<void> };
  readonly #abort: AbortController;

  constructor(http: Http, sandbox: string, response: Promise<Response>, abort: AbortController) {
    this.#abort = abort;
    const out = new Chunks();
    const err = new Chunks();
    this.stdout = out;
    this.stderr = err;
    let started!: (id: string) => void;
    let failed!: (e: unknown) => void;
    this.id = new Promise<string>((resolve, reject) => ((started = resolve), (failed = reject)));
    this.id.catch(() => {});
    this.exit = (async () => {
      try {
        const body = (await response).body;
        if (!body) throw new Error("the exec stream has no body");
        for await (const line of lines(body)) {
          if (!line) continue;
          const m = JSON.parse(line) as Record<string, unknown>;
          switch (m.type) {
            case "started":
              started(m.id as string);
              break;
            case "stdout":
              out.push(Buffer.from(m.data as string, "base64"));
              break;
            case "stderr":
              err.push(Buffer.from(m.data as string, "base64"));
              break;
            case "exit":
              return {
                exitCode: m.exit_code as number,
                durationMs: m.duration_ms as number,
                timedOut: m.timed_out as boolean,
                oomKilled: false,
                signal: (m.signal as number | null) ?? null,
                stdoutBytes: m.stdout_bytes as number,
                stderrBytes: m.stderr_bytes as number,
              };
          }
        }
        throw new Error("the exec stream ended before the command's exit status");
      } catch (e) {
        failed(e);
        throw e;
      } finally {
        out.end();
        err.end();
      }
    })();
    const send = async (data: string | Uint8Array | undefined, close: boolean) => {
      const id = await this.id;
      await http.send("POST", `/api/v1/hiveboxes/${encodeURIComponent(sandbox)}/exec/${id}/stdin${close ? "?close=true" : ""}`, {
        body: data === undefined ? null : typeof data === "string" ? new TextEncoder().encode(data) : (data as Uint8Array<ArrayBuffer>),
        headers: { "Content-Type": "application/octet-stream" },
      });
    };
    this.stdin = { write: (data) => send(data, false), end: (data) => send(data, true) };
  }

  /** Ends the command (its process group is killed). */
  kill(): void {
    this.#abort.abort();
  }
}
