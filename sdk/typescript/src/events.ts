import type { EventsOptions, SandboxEvent } from "./types.js";
import { ApiError, AuthError, NotFoundError } from "./errors.js";
import { Http, lines } from "./http.js";

/**
 * A sandbox's events as an async iterator. Following, a dropped connection is resumed with
 * Last-Event-ID: every event exactly once, in order.
 */
export async function* events(http: Http, path: string, options: EventsOptions = {}): AsyncGenerator<SandboxEvent> {
  const query = new URLSearchParams();
  if (options.kinds?.length) query.set("kind", options.kinds.join(","));
  if (options.decision) query.set("decision", options.decision);
  const follow = options.follow ?? true;
  let last: number | undefined = options.since;
  if (!follow) {
    query.set("follow", "false");
    query.set("format", "jsonl");
    if (last !== undefined) query.set("since", String(last));
    const response = await http.send("GET", `${path}?${query}`, options.signal ? { signal: options.signal } : {});
    for await (const line of lines(response.body!)) {
      if (line) yield JSON.parse(line) as SandboxEvent;
    }
    return;
  }

  let failures = 0;
  while (!options.signal?.aborted) {
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (last !== undefined) headers["Last-Event-ID"] = String(last);
      const response = await http.send("GET", `${path}?${query}`, { headers, ...(options.signal ? { signal: options.signal } : {}) });
      failures = 0;
      let id: string | undefined;
      for await (const line of lines(response.body!)) {
        if (line.startsWith("id: ")) id = line.slice(4);
        else if (line.startsWith("data: ")) {
          const event = JSON.parse(line.slice(6)) as SandboxEvent;
          last = id !== undefined ? Number(id) : event.seq;
          yield event;
        }
      }
    } catch (e) {
      if (options.signal?.aborted || (e as Error).name === "AbortError") return;
      if (e instanceof NotFoundError || e instanceof AuthError || (e instanceof ApiError && e.status >= 400 && e.status < 500)) throw e;
      failures++;
    }
    // The stream ended or broke: reconnect (briefly backing off) from the last event seen.
    await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 200 * 2 ** Math.min(failures, 5))));
  }
}
