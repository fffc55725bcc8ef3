using System.Text.Json;

namespace Hive.Events.Tests;

/// <summary>
/// The event budget in the shared spool path: repeated denials aggregated (in order, nothing lost),
/// producers held to the rate (they wait, nothing is dropped), admission refused while the byte
/// budget is exhausted, and retention that never touches a live sandbox's own history.
/// </summary>
[TestFixture]
public sealed class BudgetTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("hive-budget-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Spool => Path.Combine(_dir, "spool");

    private string LogDir => Path.Combine(_dir, "log");

    private static Event Denied(string path, long ts, long duration = 3) =>
        new() { Kind = "fs.getattr", Decision = "deny", TsUnixUs = ts, Fs = new FsEvent { Op = "getattr", Mount = "/w", Path = path, Errno = 13, DurationUs = duration } };

    private static Event Allowed(string path, long ts) =>
        new() { Kind = "fs.read", Decision = "allow", TsUnixUs = ts, Fs = new FsEvent { Op = "read", Mount = "/w", Path = path, Bytes = 1 } };

    /// <summary>Everything in the spools into a log, then every event of it.</summary>
    private List<Event> Ingest()
    {
        using (var consumer = new SpoolConsumer(Spool))
        using (var log = EventLog.Open(LogDir))
        {
            var payloads = new List<ReadOnlyMemory<byte>>();
            while (true)
            {
                payloads.Clear();
                consumer.Collect(payloads, 1 << 20);
                if (payloads.Count == 0)
                {
                    break;
                }

                log.Append(payloads, consumer.Positions);
                consumer.Release();
            }
        }

        using var reader = new EventLogReader(LogDir, 0);
        var entries = new List<LogEntry>();
        while (reader.Read(entries, 10_000) > 0)
        {
        }

        return [.. entries.Select(e => Event.Parser.ParseFrom(e.Payload.Span))];
    }

    private static ulong Occurrences(IEnumerable<Event> events) => (ulong)events.Sum(e => (long)Math.Max(1UL, e.Count));

    [Test]
    public void Identical_denials_become_one_event_with_a_count_before_the_next_event()
    {
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 1; i <= 1000; i++)
            {
                Assert.That(writer.TryAppend(Denied("/w/secret", ts: i, duration: i % 7)), Is.True);
            }

            Assert.That(writer.TryAppend(Allowed("/w/a", ts: 2000)), Is.True);
            Assert.That(writer.Gathered, Is.EqualTo(999));
        }

        var events = Ingest();
        Assert.That(events.Select(e => (e.Kind, e.Count)), Is.EqualTo(new[] { ("fs.getattr", 0UL), ("fs.getattr", 999UL), ("fs.read", 0UL) }));
        Assert.That(events[0].TsUnixUs, Is.EqualTo(1), "the first denial is on record as it happened");
        Assert.That((events[1].FirstTsUnixUs, events[1].TsUnixUs), Is.EqualTo((2L, 1000L)), "the aggregate spans the repeats, first to last");
        Assert.That(events[1].Fs.Path, Is.EqualTo("/w/secret"));
        Assert.That(Occurrences(events.Where(e => e.Kind == "fs.getattr")), Is.EqualTo(1000UL), "every denial is counted");
    }

    [Test]
    public void Allowed_operations_and_different_denials_are_never_merged()
    {
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 0; i < 3; i++)
            {
                writer.TryAppend(Allowed("/w/a", ts: 10 + i));
            }

            writer.TryAppend(Denied("/w/x", ts: 20));
            writer.TryAppend(Denied("/w/y", ts: 21));
            var otherReason = Denied("/w/x", ts: 22);
            otherReason.Decision = "deny-ro";
            otherReason.Fs.Errno = 30;
            writer.TryAppend(otherReason);
        }

        var events = Ingest();
        Assert.That(events.Count, Is.EqualTo(6));
        Assert.That(events.All(e => e.Count == 0));
    }

    [Test]
    public void Gathered_denials_are_written_when_the_window_ends_on_sync_and_on_shutdown()
    {
        using (var budget = EventBudget.Open(Directory.CreateDirectory(Spool).FullName))
        {
            budget.Configure(0, 0, TimeSpan.FromMilliseconds(300));
        }

        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 1; i <= 5; i++)
            {
                writer.TryAppend(Denied("/w/timer", ts: i));
            }

            // The producer goes quiet: the window's end writes the aggregate by itself.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (writer.Appended < 2 && DateTime.UtcNow < deadline)
            {
                Thread.Sleep(20);
            }

            Assert.That(writer.Appended, Is.EqualTo(2));
            for (var i = 6; i <= 8; i++)
            {
                writer.TryAppend(Denied("/w/timer", ts: i));
            }

            var beforeSync = writer.Appended;
            Assert.That(writer.Sync(), Is.True);
            Assert.That(writer.Appended, Is.GreaterThan(beforeSync), "sync writes what is gathered");
            writer.TryAppend(Denied("/w/timer", ts: 9));
            writer.TryAppend(Denied("/w/timer", ts: 10));
        }

        var events = Ingest();
        Assert.That(events.Take(2).Select(e => e.Count), Is.EqualTo(new ulong[] { 0, 4 }));
        Assert.That(events[^1].Count, Is.GreaterThan(0UL), "what was gathered at shutdown went out then");
        Assert.That(Occurrences(events), Is.EqualTo(10UL), "every denial is counted");
        Assert.That(events.Select(e => e.TsUnixUs), Is.Ordered, "in the order they happened");
    }

    [Test]
    public void Aggregation_can_be_turned_off()
    {
        using (var budget = EventBudget.Open(Directory.CreateDirectory(Spool).FullName))
        {
            budget.Configure(0, 0, TimeSpan.Zero);
        }

        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 1; i <= 50; i++)
            {
                writer.TryAppend(Denied("/w/each", ts: i));
            }
        }

        Assert.That(Ingest().Count, Is.EqualTo(50));
    }

    [Test]
    public void Beyond_the_rate_producers_of_several_processes_wait_and_nothing_is_dropped()
    {
        using var budget = EventBudget.Open(Directory.CreateDirectory(Spool).FullName);
        budget.Configure(2000, 100, EventBudget.DefaultAggregateWindow);

        // Two producers (as SbxFuse and SbxProxy would be) share the sandbox's one budget.
        var started = System.Diagnostics.Stopwatch.StartNew();
        var tasks = new[] { "fs-0", "net" }.Select(source => Task.Run(() =>
        {
            using var writer = new SpoolWriter(Spool, source);
            var ok = 0;
            for (var i = 0; i < 300; i++)
            {
                ok += writer.TryAppend(Allowed($"/{source}/{i}", ts: i + 1)) ? 1 : 0;
            }

            return ok;
        })).ToArray();
        Assert.That(Task.WhenAll(tasks).Wait(TimeSpan.FromSeconds(60)), Is.True);
        Assert.That(tasks.Sum(t => t.Result), Is.EqualTo(600), "every append was accepted");
        Assert.That(started.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(245)), "500 events beyond the burst at 2,000/s take 250 ms at least");

        Assert.That(Ingest().Count, Is.EqualTo(600), "and is in the log: slowed, not dropped");
        Assert.That(budget.Throttled, Is.GreaterThan(0), "beyond the burst, appends waited for their turn");
        Assert.That(budget.Waited, Is.GreaterThan(TimeSpan.Zero));
    }

    [Test]
    public void An_unconfigured_budget_holds_nothing_back()
    {
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 0; i < 5000; i++)
            {
                writer.TryAppend(Allowed("/w/fast", ts: i + 1));
            }
        }

        using var budget = EventBudget.Open(Spool);
        Assert.That(budget.Throttled, Is.Zero);
        Assert.That(budget.Exhausted, Is.False);
    }

    [Test]
    public void While_the_budget_is_exhausted_operations_are_refused_and_counted()
    {
        using var writer = new SpoolWriter(Spool, "controller");
        using var sbxd = EventBudget.Open(Spool);
        Assert.That(writer.Admit(), Is.True);

        sbxd.Publish(4096, 5000);
        Assert.That(sbxd.SetExhausted(true), Is.False);
        Assert.That(writer.Admit(), Is.False);
        Assert.That(writer.Admit(), Is.False);
        Assert.That(writer.Budget.Bytes, Is.EqualTo((4096L, 5000L)), "what producers quote in their refusals");
        Assert.That(writer.TryAppend(Allowed("/w/finishing", ts: 1)), Is.True, "an operation admitted before still gets its event");
        Assert.That(sbxd.TakeRefused(), Is.EqualTo(2));

        Assert.That(sbxd.SetExhausted(false), Is.True);
        Assert.That(writer.Admit(), Is.True);
        Assert.That(sbxd.Refused, Is.Zero);
    }

    [Test]
    public void Retention_never_removes_history_from_the_kept_sequence_on()
    {
        using var consumer = new SpoolConsumer(Spool);
        using var log = EventLog.Open(LogDir, new EventLogOptions { SegmentBytes = 512, MaxBytes = 1024, MaxAge = TimeSpan.Zero });
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 0; i < 40; i++)
            {
                writer.TryAppend(Allowed($"/before/{i}", ts: i + 1));
            }
        }

        var payloads = new List<ReadOnlyMemory<byte>>();
        void IngestAll()
        {
            while (true)
            {
                payloads.Clear();
                consumer.Collect(payloads, 200);
                if (payloads.Count == 0)
                {
                    return;
                }

                log.Append(payloads, consumer.Positions);
                consumer.Release();
            }
        }

        IngestAll();

        // A new life starts in a segment of its own; its history is kept whatever the limits say.
        var since = log.LastSeq + 1;
        log.Append([], consumer.Positions, newSegment: true);
        Assert.That(LogFormat.Segments(LogDir)[^1].FirstSeq, Is.EqualTo(since));
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 0; i < 40; i++)
            {
                writer.TryAppend(Allowed($"/life/{i}", ts: 100 + i));
            }
        }

        IngestAll();
        Assert.That(log.BytesFrom(since), Is.GreaterThan(1024), "this life alone is over the size limit");
        log.ApplyRetention(DateTimeOffset.UtcNow, keepFrom: since);
        using var reader = new EventLogReader(LogDir, 0);
        var entries = new List<LogEntry>();
        while (reader.Read(entries, 1000) > 0)
        {
        }

        Assert.That(entries[0].Seq, Is.EqualTo(since), "the earlier life went, this one is whole");
        Assert.That(entries.Count, Is.EqualTo(40));
    }

    [Test]
    public void The_json_form_of_an_aggregate_has_count_and_first_ts()
    {
        var e = Denied("/w/secret", ts: 1_796_159_633_000_009);
        e.Count = 1234;
        e.FirstTsUnixUs = 1_796_159_632_000_001;
        var json = JsonDocument.Parse(EventJson.ToUtf8("box", e)).RootElement;
        Assert.That(json.GetProperty("count").GetUInt64(), Is.EqualTo(1234UL));
        Assert.That(json.GetProperty("first_ts").GetString(), Is.EqualTo("2026-12-01T21:13:52.000001Z"));
        Assert.That(json.GetProperty("ts").GetString(), Is.EqualTo("2026-12-01T21:13:53.000009Z"));
        Assert.That(JsonDocument.Parse(EventJson.ToUtf8("box", Denied("/w/x", 1))).RootElement.TryGetProperty("count", out _), Is.False, "an ordinary event has no count");

        var audit = new Event { Kind = "audit.budget_exhausted", Audit = new AuditEvent { Detail = "d", BudgetBytes = 10, UsedBytes = 11 } };
        var auditJson = JsonDocument.Parse(EventJson.ToUtf8("box", audit)).RootElement;
        Assert.That(auditJson.GetProperty("budget_bytes").GetInt64(), Is.EqualTo(10));
        Assert.That(auditJson.GetProperty("used_bytes").GetInt64(), Is.EqualTo(11));
    }
}
