import { ApiError, errorFrom } from "./errors.js";

export interface HiveOptions {
  /** Controller URL. Default: HIVE_URL, then HIVEBOX_API_URL, then http://localhost:7070. */
  url?: string;
  /** API key. Default: HIVEBOX_API_KEY (none = an unauthenticated local Controller). */
  apiKey?: string;
}

/** Requests to the Controller: base URL, bearer key, typed errors. */
export class Http {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;

  constructor(options: HiveOptions = {}) {
    const env = typeof process !== "undefined" ? process.env : {};
    this.baseUrl = (options.url ?? env.HIVE_URL ?? env.HIVEBOX_API_URL ?? "http://localhost:7070").replace(/\/+$/, "");
    this.#apiKey = options.apiKey ?? (env.HIVEBOX_API_KEY || undefined);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.#apiKey ? { Authorization: `Bearer ${this.#apiKey}`, ...extra } : extra;
  }

  /** Sends a request; a non-2xx answer throws the matching typed error. */
  async send(method: string, path: string, init: { body?: BodyInit | null; headers?: Record<string, string>; signal?: AbortSignal; duplex?: boolean } = {}): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers: this.headers(init.headers),
        body: init.body ?? null,
        signal: init.signal ?? null,
        ...(init.duplex ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (e) {
      if ((e as Error).name === "AbortError") throw e;
      throw new ApiError(0, `cannot reach the Hive Controller at ${this.baseUrl}: ${(e as Error).message}`);
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.send(method, path, {
      body: body === undefined ? null : JSON.stringify(body),
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      ...(signal ? { signal } : {}),
    });
    return (await response.json()) as T;
  }
}

/** Lines of a streamed response body, as they arrive. */
export async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        yield pending.slice(0, newline).replace(/\r$/, "");
        pending = pending.slice(newline + 1);
      }
    }
    pending += decoder.decode();
    if (pending.length > 0) yield pending;
  } finally {
    reader.releaseLock();
  }
}
