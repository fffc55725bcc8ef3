using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hive.Events.Log;
using Hive.Events.Spool;
using Hive.Protos.V1;

// The event pipeline's numbers (run by bench/events, which starts the processes):
//   events-bench ingest SPOOL_DIR LOG_DIR N      producers append N events; time until all are durable in the log
//   events-bench reference DIR N                the same bytes appended to a plain file, fsync per 4 MiB
//   events-bench count LOG_DIR                  how many events a log holds
//   events-bench latency BASE_URL SANDBOX SPOOL_DIR N RATE   op (spool append) to SSE delivery, p50/p99
var inv = CultureInfo.InvariantCulture;
switch (args.FirstOrDefault())
{
    case "ingest" when args.Length == 4:
    {
        var n = int.Parse(args[3], inv);
        var producers = 2;
        var sw = Stopwatch.StartNew();
        var writers = Enumerable.Range(0, producers).Select(p => Task.Run(() =>
        {
            using var spool = new SpoolWriter(args[1], $"bench-{p}") { MaxPendingFiles = 64 };
            for (var i = p; i < n; i += producers)
            {
                if (!spool.TryAppend(Sample(i)))
                {
                    throw new InvalidOperationException("append refused");
                }
            }
        })).ToArray();
        using var reader = new EventLogReader(args[2], 0);
        var entries = new List<LogEntry>(8192);
        long seen = 0;
        while (seen < n)
        {
            entries.Clear();
            var got = reader.Read(entries, entries.Capacity);
            seen += got;
            if (got == 0)
            {
                Thread.Sleep(1);
            }
        }

        var durable = sw.Elapsed.TotalSeconds;
        Task.WaitAll(writers);
        Console.WriteLine(JsonSerializer.Serialize(new { events = n, producers, durable_per_sec = Math.Round(n / durable), seconds = Math.Round(durable, 3), bytes_per_event = Sample(0).CalculateSize() + 4 }));
        return 0;
    }

    case "reference" when args.Length == 3:
    {
        var n = int.Parse(args[2], inv);
        var size = Google.Protobuf.MessageExtensions.ToByteArray(Sample(0)).Length + 4 + 16;
        var chunk = new byte[4 * 1024 * 1024 / size * size];
        var sw = Stopwatch.StartNew();
        using (var file = new FileStream(Path.Combine(args[1], "plain.log"), FileMode.Create, FileAccess.Write, FileShare.None, 0))
        {
            long written = 0;
            while (written < (long)n * size)
            {
                var len = (int)Math.Min(chunk.Length, (long)n * size - written);
                file.Write(chunk, 0, len);
                file.Flush(flushToDisk: true);
                written += len;
            }
        }

        Console.WriteLine(JsonSerializer.Serialize(new { events = n, durable_per_sec = Math.Round(n / sw.Elapsed.TotalSeconds), seconds = Math.Round(sw.Elapsed.TotalSeconds, 3) }));
        return 0;
    }

    case "latency" when args.Length == 6:
    {
        var (baseUrl, sandbox, spoolDir) = (args[1], args[2], args[3]);
        var n = int.Parse(args[4], inv);
        var rate = int.Parse(args[5], inv);
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = Timeout.InfiniteTimeSpan };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/hiveboxes/{sandbox}/events?kind=bench");
        var lastSeq = await LastSeqAsync(http, sandbox);
        request.Headers.TryAddWithoutValidation("Last-Event-ID", lastSeq.ToString(inv));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var body = new StreamReader(await response.Content.ReadAsStreamAsync());
        var warmup = Math.Min(500, n / 10);
        n += warmup;
        var latencies = new List<double>(n);
        var receiver = Task.Run(async () =>
        {
            var received = 0;
            while (received < n && await body.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    using var doc = JsonDocument.Parse(line.AsMemory(6));
                    var sent = doc.RootElement.GetProperty("duration_us").GetInt64(); // the producer's clock at append, in µs
                    if (++received > warmup)
                    {
                        latencies.Add((NowUs() - sent) / 1000.0); // the first events pay for connection set-up and JIT
                    }
                }
            }
        });
        using (var spool = new SpoolWriter(spoolDir, "bench"))
        {
            var interval = Stopwatch.Frequency / rate;
            var next = Stopwatch.GetTimestamp();
            for (var i = 0; i < n; i++)
            {
                // Sleep, not spin: on 2 cores a spinning producer would steal the CPU the pipeline needs.
                var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
                if (remaining > TimeSpan.FromMicroseconds(200))
                {
                    Thread.Sleep(remaining - TimeSpan.FromMicroseconds(100));
                }

                next += interval;
                var e = Sample(i);
                e.Kind = "bench";
                e.Fs.DurationUs = NowUs();
                spool.TryAppend(e);
            }
        }

        await receiver.WaitAsync(TimeSpan.FromSeconds(60));
        latencies.Sort();
        double P(double q) => latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
        Console.WriteLine(JsonSerializer.Serialize(new { events = latencies.Count, rate, p50_ms = Math.Round(P(0.5), 2), p99_ms = Math.Round(P(0.99), 2), max_ms = Math.Round(latencies[^1], 2) }));
        return 0;
    }

    case "count" when args.Length == 2:
    {
        using var reader = new EventLogReader(args[1], 0);
        var entries = new List<LogEntry>(8192);
        long count = 0;
        while (true)
        {
            entries.Clear();
            var got = reader.Read(entries, entries.Capacity);
            if (got == 0)
            {
                break;
            }

            count += got;
        }

        Console.WriteLine(count);
        return 0;
    }

    default:
        Console.Error.WriteLine("usage: events-bench count LOG | events-bench ingest SPOOL LOG N | reference DIR N | latency URL SANDBOX SPOOL N RATE");
        return 2;
}

static long NowUs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

static Event Sample(int i) => new()
{
    TsUnixUs = NowUs(),
    Kind = "fs.read",
    Decision = "allow",
    Fs = new FsEvent { Op = "read", Mount = "/workspace", Path = "/workspace/src/module_" + (i % 1000).ToString(CultureInfo.InvariantCulture) + ".py", Bytes = 4096, DurationUs = 12 },
};

static async Task<ulong> LastSeqAsync(HttpClient http, string sandbox)
{
    var text = await http.GetStringAsync($"/api/v1/hiveboxes/{sandbox}/events?follow=false&format=jsonl");
    var last = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
    return last is null ? 0 : JsonDocument.Parse(last).RootElement.GetProperty("seq").GetUInt64();
}
