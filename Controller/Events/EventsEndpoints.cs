using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Hive.Controller.Api;
using Hive.Controller.Sandboxes.Store;
using Hive.Events;
using Hive.Protos.V1;

namespace Hive.Controller.Events;

/// <summary>
/// <c>GET /api/v1/hiveboxes/:id/events</c> and <c>GET /api/v1/events</c>: Server-Sent Events (<c>id:</c> =
/// sequence, resumable with <c>Last-Event-ID</c> or <c>?since=</c>), or history as a JSON page or JSON
/// lines with <c>?follow=false</c>. Every request reads the logs on disk at its own pace, so a slow
/// client only falls behind itself.
/// </summary>
internal static class EventsEndpoints
{
    private const int DefaultPage = 1000;
    private const int MaxPage = 10000;

    /// <summary>Paths and commands stay readable ('>' not '\u003E'); the output is never embedded in HTML.</summary>
    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void MapEventsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/v1/hiveboxes/{id}/events", async (string id, HttpContext http, EventFeeds feeds, SandboxStore store, Hosting.ControllerOptions options) =>
        {
            var name = RouteNames.Require(id);
            if (store.Find(name) is null && !Directory.Exists(feeds.LogDir(name)))
            {
                throw ApiException.SandboxNotFound(name);
            }

            var query = Query.Parse(http.Request, compound: false);
            using var source = new SandboxEventSource(name, feeds.Get(name), feeds.LogDir(name), query.After.TryGetValue(string.Empty, out var after) ? after : 0, query.Filter);
            using var merged = new MergedEvents([source], null, feeds, query.Filter);
            await ServeAsync(http, query, merged, single: true, options.EventsHeartbeat);
        });

        app.MapGet("/api/v1/events", async (HttpContext http, EventFeeds feeds, Hosting.ControllerOptions options) =>
        {
            var query = Query.Parse(http.Request, compound: true);
            using var merged = new MergedEvents([], query.After, feeds, query.Filter);
            await ServeAsync(http, query, merged, single: false, options.EventsHeartbeat);
        });
    }

    private static async Task ServeAsync(HttpContext http, Query query, MergedEvents events, bool single, TimeSpan heartbeat)
    {
        var ct = http.RequestAborted;
        await events.ReadyAsync(ct);
        if (!query.Follow)
        {
            await WriteHistoryAsync(http, query, events, single, ct);
            return;
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        http.Response.Headers["X-Accel-Buffering"] = "no";
        var body = http.Response.BodyWriter;
        Write(body, "retry: 1000\n\n");
        await body.FlushAsync(ct);
        var lastWrite = Environment.TickCount64;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var changed = events.Changed();
                var sent = 0;
                while (sent < 512 && events.TryTake(out var e))
                {
                    Write(body, "id: ");
                    Write(body, single ? e.Event.Seq.ToString(CultureInfo.InvariantCulture) : events.Cursor());
                    Write(body, "\ndata: ");
                    using (var json = new Utf8JsonWriter(body, JsonOptions))
                    {
                        EventJson.Write(json, e.Sandbox, e.Event);
                    }

                    Write(body, "\n\n");
                    sent++;
                }

                if (sent > 0)
                {
                    await body.FlushAsync(ct); // backpressure: a slow client holds only this loop
                    lastWrite = Environment.TickCount64;
                    continue;
                }

                var idle = TimeSpan.FromMilliseconds(heartbeat.TotalMilliseconds - (Environment.TickCount64 - lastWrite));
                if (idle <= TimeSpan.Zero)
                {
                    Write(body, ": keep-alive\n\n");
                    await body.FlushAsync(ct);
                    lastWrite = Environment.TickCount64;
                    continue;
                }

                await Task.WhenAny(changed, Task.Delay(idle, ct));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away.
        }
    }

    private static async Task WriteHistoryAsync(HttpContext http, Query query, MergedEvents events, bool single, CancellationToken ct)
    {
        var body = http.Response.BodyWriter;
        if (query.JsonLines)
        {
            http.Response.ContentType = "application/x-ndjson";
            var count = 0;
            while ((query.Limit is null || count < query.Limit) && events.TryTake(out var e))
            {
                using (var json = new Utf8JsonWriter(body, JsonOptions))
                {
                    EventJson.Write(json, e.Sandbox, e.Event);
                }

                Write(body, "\n");
                if (++count % 256 == 0)
                {
                    await body.FlushAsync(ct);
                }
            }

            await body.FlushAsync(ct);
            return;
        }

        http.Response.ContentType = "application/json; charset=utf-8";
        var limit = query.Limit ?? DefaultPage;
        var page = 0;
        using (var json = new Utf8JsonWriter(body, JsonOptions))
        {
            json.WriteStartObject();
            json.WriteStartArray("events");
            while (page < limit && events.TryTake(out var e))
            {
                EventJson.Write(json, e.Sandbox, e.Event);
                page++;
                if (json.BytesPending > 32 * 1024)
                {
                    json.Flush();
                    await body.FlushAsync(ct);
                }
            }

            json.WriteEndArray();
            var more = events.TryPeek();
            json.WriteString("next_cursor", single ? events.SinglePosition().ToString(CultureInfo.InvariantCulture) : events.Cursor());
            json.WriteBoolean("has_more", more);
            json.WriteEndObject();
        }

        await body.FlushAsync(ct);
    }

    private static void Write(PipeWriter writer, string text)
    {
        var span = writer.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        writer.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    /// <summary>The request's parameters, validated.</summary>
    private sealed record Query(Dictionary<string, ulong> After, EventFilter Filter, bool Follow, int? Limit, bool JsonLines)
    {
        public static Query Parse(HttpRequest request, bool compound)
        {
            var q = request.Query;
            if (!EventFilter.TryParse(q["kind"], q["decision"], out var filter, out var error))
            {
                throw ApiException.BadRequest(error!);
            }

            var follow = true;
            if (q["follow"].ToString() is { Length: > 0 } f)
            {
                follow = f switch
                {
                    "true" or "1" => true,
                    "false" or "0" => false,
                    _ => throw ApiException.BadRequest("'follow' must be true or false"),
                };
            }

            int? limit = null;
            if (q["limit"].ToString() is { Length: > 0 } l)
            {
                limit = int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxPage
                    ? n
                    : throw ApiException.BadRequest($"'limit' must be between 1 and {MaxPage}");
            }

            var format = q["format"].ToString();
            var jsonLines = format == "jsonl" || (format.Length == 0 && request.Headers.Accept.ToString().Contains("application/x-ndjson", StringComparison.Ordinal));
            if (format.Length > 0 && format is not ("json" or "jsonl"))
            {
                throw ApiException.BadRequest("'format' must be json or jsonl");
            }

            // Where to start: cursor (pages), else Last-Event-ID (SSE reconnects), else since.
            var position = q["cursor"].ToString() is { Length: > 0 } c ? ("cursor", c)
                : request.Headers["Last-Event-ID"].ToString() is { Length: > 0 } id ? ("Last-Event-ID", id)
                : q["since"].ToString() is { Length: > 0 } s ? ("since", s)
                : (null, null);
            var after = new Dictionary<string, ulong>(StringComparer.Ordinal);
            if (position.Item2 is { } value)
            {
                if (!compound)
                {
                    after[string.Empty] = ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
                        ? seq
                        : throw ApiException.BadRequest($"'{position.Item1}' must be an event sequence number");
                }
                else if (!MergedEvents.TryParseCursor(value, after))
                {
                    throw ApiException.BadRequest($"'{position.Item1}' must be a cursor of the form sandbox:seq,sandbox:seq");
                }
            }

            return new Query(after, filter, follow, limit, jsonLines);
        }
    }
}
