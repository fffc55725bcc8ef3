using Google.Protobuf;

namespace Hive.Events.Tests;

/// <summary>The durable log on its own: spools in, checkpointed batches, crash recovery, readers, retention.</summary>
[TestFixture]
public sealed class LogTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("hive-events-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Spool => Path.Combine(_dir, "spool");

    private string LogDir => Path.Combine(_dir, "log");

    private static Event Fs(string path) => new() { Kind = "fs.read", Decision = "allow", TsUnixUs = 1, Fs = new FsEvent { Op = "read", Path = path } };

    /// <summary>What Sbxd's ingest does: everything in the spools into the log, then spool files released.</summary>
    private static int Ingest(SpoolConsumer consumer, EventLog log)
    {
        var total = 0;
        var payloads = new List<ReadOnlyMemory<byte>>();
        while (true)
        {
            payloads.Clear();
            consumer.Collect(payloads, 1 << 20);
            if (payloads.Count == 0)
            {
                return total;
            }

            log.Append(payloads, consumer.Positions);
            consumer.Release();
            total += payloads.Count;
        }
    }

    private static List<(ulong Seq, string Path)> ReadAll(string dir, ulong after = 0, ulong limit = ulong.MaxValue)
    {
        using var reader = new EventLogReader(dir, after);
        var entries = new List<LogEntry>();
        while (reader.Read(entries, 1000, limit) > 0)
        {
        }

        return [.. entries.Select(e => (e.Seq, Event.Parser.ParseFrom(e.Payload.Span).Fs.Path))];
    }

    [Test]
    public void Events_from_several_producers_get_gapless_sequence_numbers_and_spools_are_released()
    {
        using (var a = new SpoolWriter(Spool, "fs-0", rotateBytes: 400) { MaxPendingFiles = 100 })
        using (var b = new SpoolWriter(Spool, "controller"))
        {
            for (var i = 0; i < 50; i++)
            {
                Assert.That(a.TryAppend(Fs($"/a/{i}")), Is.True);
                Assert.That(b.TryAppend(Fs($"/b/{i}")), Is.True);
            }
        }

        using var consumer = new SpoolConsumer(Spool);
        using var log = EventLog.Open(LogDir);
        Assert.That(Ingest(consumer, log), Is.EqualTo(100));
        Assert.That(log.LastSeq, Is.EqualTo(100UL));
        var events = ReadAll(LogDir);
        Assert.That(events.Select(e => e.Seq), Is.EqualTo(Enumerable.Range(1, 100).Select(i => (ulong)i)));
        Assert.That(events.Where(e => e.Path.StartsWith("/a/", StringComparison.Ordinal)).Select(e => e.Path), Is.EqualTo(Enumerable.Range(0, 50).Select(i => $"/a/{i}")), "each producer's order is kept");

        // Only the newest generation of each producer may remain (it may still be appended to).
        Assert.That(SpoolFiles.List(Spool).Values.All(g => g.Count == 1));
        Assert.That(ReadAll(LogDir, after: 60).First().Seq, Is.EqualTo(61UL));
        Assert.That(ReadAll(LogDir, limit: 10).Count, Is.EqualTo(10), "never beyond the durable watermark");
    }

    [Test]
    public void After_a_crash_nothing_is_lost_or_duplicated()
    {
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            for (var i = 0; i < 10; i++)
            {
                writer.TryAppend(Fs($"/x/{i}"));
            }
        }

        using (var consumer = new SpoolConsumer(Spool))
        using (var log = EventLog.Open(LogDir))
        {
            Ingest(consumer, log);
        }

        // A batch cut short by a crash: its events, without their checkpoint, at the end of the segment.
        var segment = LogFormat.Segments(LogDir)[^1].Path;
        var cleanLength = new FileInfo(segment).Length;
        var payload = Fs("/torn").ToByteArray();
        var record = new byte[LogFormat.HeaderBytes + payload.Length];
        payload.CopyTo(record, LogFormat.HeaderBytes);
        LogFormat.WriteHeader(record, 11, payload);
        File.AppendAllText(segment, string.Empty);
        using (var stream = new FileStream(segment, FileMode.Append))
        {
            stream.Write(record);
            stream.Write(record.AsSpan(0, 7)); // and half a record
        }

        Assert.That(ReadAll(LogDir).Count, Is.EqualTo(10), "readers never show a batch without its checkpoint");

        // The producer restarts (new generation) and writes more; Sbxd restarts from the log's checkpoint.
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            writer.TryAppend(Fs("/after"));
        }

        using (var log = EventLog.Open(LogDir))
        using (var consumer = new SpoolConsumer(Spool))
        {
            Assert.That(new FileInfo(segment).Length, Is.EqualTo(cleanLength), "the unfinished batch was cut off");
            foreach (var (source, position) in log.Checkpoint)
            {
                consumer.Positions[source] = position;
            }

            Assert.That(Ingest(consumer, log), Is.EqualTo(1), "spool records already in the log are not taken again");
        }

        var events = ReadAll(LogDir);
        Assert.That(events.Select(e => e.Seq), Is.EqualTo(Enumerable.Range(1, 11).Select(i => (ulong)i)));
        Assert.That(events[^1].Path, Is.EqualTo("/after"));
    }

    [Test]
    public void A_torn_spool_record_ends_its_generation_and_later_records_still_arrive()
    {
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            writer.TryAppend(Fs("/one"));
        }

        var first = Path.Combine(Spool, SpoolFiles.FileName("fs-0", 1));
        File.AppendAllText(first, "\u0010\0\0\0abc"); // a producer died mid-write
        using (var writer = new SpoolWriter(Spool, "fs-0"))
        {
            writer.TryAppend(Fs("/two"));
        }

        using var consumer = new SpoolConsumer(Spool);
        using var log = EventLog.Open(LogDir);
        Assert.That(Ingest(consumer, log), Is.EqualTo(2));
        Assert.That(consumer.TornRecords, Is.EqualTo(1));
        Assert.That(ReadAll(LogDir).Select(e => e.Path), Is.EqualTo(new[] { "/one", "/two" }));
    }

    [Test]
    public void Producers_wait_for_a_stalled_consumer_and_then_fail_closed()
    {
        using var writer = new SpoolWriter(Spool, "fs-0", rotateBytes: 64) { MaxPendingFiles = 2, StallTimeout = TimeSpan.FromMilliseconds(300) };
        var accepted = 0;
        while (writer.TryAppend(Fs("/p")) && accepted < 1000)
        {
            accepted++;
        }

        Assert.That(accepted, Is.LessThan(1000), "with nobody consuming, appends stop being accepted (and say so)");

        // Once the consumer catches up, appends are accepted again.
        using var consumer = new SpoolConsumer(Spool);
        using var log = EventLog.Open(LogDir);
        Assert.That(Ingest(consumer, log), Is.EqualTo(accepted), "everything accepted reached the log");
        Assert.That(writer.TryAppend(Fs("/q")), Is.True);
    }

    [Test]
    public void Readers_follow_segments_and_retention_removes_old_ones()
    {
        using var consumer = new SpoolConsumer(Spool);
        using var log = EventLog.Open(LogDir, new EventLogOptions { SegmentBytes = 1024, MaxBytes = 4096, MaxAge = TimeSpan.Zero });
        using var writer = new SpoolWriter(Spool, "fs-0");
        using var follower = new EventLogReader(LogDir, 0);
        var followed = new List<LogEntry>();
        for (var round = 0; round < 20; round++)
        {
            for (var i = 0; i < 10; i++)
            {
                writer.TryAppend(Fs($"/r{round}/{i}"));
            }

            Ingest(consumer, log);
            while (follower.Read(followed, 1000) > 0)
            {
            }
        }

        Assert.That(LogFormat.Segments(LogDir).Count, Is.GreaterThan(3));
        Assert.That(followed.Select(e => e.Seq), Is.EqualTo(Enumerable.Range(1, 200).Select(i => (ulong)i)), "a live reader crosses segment boundaries");

        log.ApplyRetention(DateTimeOffset.UtcNow);
        var kept = ReadAll(LogDir);
        Assert.That(LogFormat.Segments(LogDir).Sum(s => new FileInfo(s.Path).Length), Is.LessThanOrEqualTo(4096 + 1024));
        Assert.That(kept[^1].Seq, Is.EqualTo(200UL));
        Assert.That(kept.Select(e => e.Seq), Is.EqualTo(Enumerable.Range((int)kept[0].Seq, kept.Count).Select(i => (ulong)i)), "what is kept is a gapless suffix");
        Assert.That(ReadAll(LogDir, after: 5)[0].Seq, Is.EqualTo(kept[0].Seq), "a cursor before retention starts at the oldest kept event");
    }

    [Test]
    public void The_timestamp_is_read_from_an_encoded_event_without_decoding_it()
    {
        var e = new Event { TsUnixUs = 1_796_159_633_123_456, Kind = "fs.read", Decision = "allow", Fs = new FsEvent { Path = "/x", Bytes = 7 } };
        Assert.That(LogFormat.TimestampOf(e.ToByteArray()), Is.EqualTo(1_796_159_633_123_456));
        Assert.That(LogFormat.TimestampOf(new Event { Kind = "x" }.ToByteArray()), Is.Zero);
        Assert.That(LogFormat.TimestampOf([0xFF, 0xFF]), Is.Zero, "garbage does not throw");
    }

    [Test]
    public void Filters_match_kinds_and_decisions_at_boundaries()
    {
        Assert.That(EventFilter.TryParse("fs,net.http", "deny", out var filter, out _), Is.True);
        Assert.That(filter.Matches(new Event { Kind = "fs.read", Decision = "deny-ro" }), Is.True);
        Assert.That(filter.Matches(new Event { Kind = "fsx.read", Decision = "deny" }), Is.False);
        Assert.That(filter.Matches(new Event { Kind = "net.http", Decision = "deny" }), Is.True);
        Assert.That(filter.Matches(new Event { Kind = "net.dns", Decision = "deny" }), Is.False);
        Assert.That(filter.Matches(new Event { Kind = "fs.read", Decision = "denyx" }), Is.False);
        Assert.That(EventFilter.TryParse("fs;rm -rf", null, out _, out var error), Is.False);
        Assert.That(error, Does.Contain("fs;rm -rf"));
    }
}
