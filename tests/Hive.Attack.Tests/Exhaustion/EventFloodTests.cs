using System.Globalization;
using System.Text.Json;

namespace Hive.Attack.Tests.Exhaustion;

/// <summary>
/// Flooding the sandbox's own event log from inside — so that retention would delete its earlier
/// history, or the host's disk and CPU would go to recording it — meets the event budget:
/// identical denials are aggregated (counted, not repeated), everything else is held to the
/// sandbox's rate (the flood is slowed, never dropped). The Controller here allows 500 events/s
/// with a burst of 500, so the floods meet the rate within seconds.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
[Category(From.Inside)]
public sealed class EventFloodTests : ExhaustionFixture
{
    private const int Rate = 500;

    protected override string[] ControllerArgs => ["--events-rate", Rate.ToString(CultureInfo.InvariantCulture), "--events-burst", "500"];

    protected override object SandboxSpec(string name) => new
    {
        name,
        cpus = 2,
        egress = new { allow = new[] { new { host = "allowed.test" } } },
        fs = new[]
        {
            new
            {
                mount = "/workspace",
                acls = new object[] { new { path = "/workspace/**", access = "rw" }, new { path = "/workspace/secrets/**", access = "deny" } },
            },
        },
    };

    [Test]
    [Defence("identical denials are aggregated into one event with a count")]
    public async Task A_flood_of_100000_denied_opens_of_one_path_is_a_handful_of_events_with_the_right_count()
    {
        Directory.CreateDirectory(Path.Combine(Backing(Sandbox), "secrets"));
        await File.WriteAllTextAsync(Path.Combine(Backing(Sandbox), "secrets", "token"), "s3cr3t");
        var since = await LastSeqAsync();

        var run = await Controller.ExecAsync(Sandbox, "python3 -c \"\nimport os\nn = 0\nfor i in range(100000):\n  try: os.open('/workspace/secrets/token', os.O_RDONLY)\n  except PermissionError: n += 1\nprint(n)\"", timeout: 600);
        Assert.That(run.GetProperty("stdout").GetString(), Is.EqualTo("100000\n"), run.ToString());

        // Each open is one lookup of the denied directory, refused (EACCES) and on record — as a count.
        static bool Flood(JsonElement e) => Kind(e) == "fs.getattr" && Str(e, "decision") == "deny" && Str(e, "path") == "/workspace/secrets";
        var events = await WaitForAsync(all => all.Where(Flood).Sum(Occurrences) >= 100_000, kind: "fs.getattr", since: since);
        var flood = events.Where(Flood).ToList();
        Assert.That(flood.Sum(Occurrences), Is.EqualTo(100_000), "every denied open is counted, none twice");
        Assert.That(flood.Count, Is.LessThan(1000), "far fewer events than denials");
        Assert.That(flood.All(e => e.GetProperty("errno").GetInt32() == 13));

        // The first denial is on record as it happened; the aggregates follow it, each spanning its repeats.
        Assert.That(flood[0].TryGetProperty("count", out _), Is.False, "the first one is an ordinary event");
        var aggregates = flood.Where(e => e.TryGetProperty("count", out _)).ToList();
        Assert.That(aggregates, Is.Not.Empty);
        Assert.That(aggregates.All(e => string.CompareOrdinal(Str(e, "first_ts"), Str(e, "ts")) <= 0));
        Assert.That(string.CompareOrdinal(Str(flood[0], "ts"), Str(aggregates[0], "first_ts")), Is.LessThanOrEqualTo(0));

        // And the sandbox's own first events are still there.
        var first = await Controller.EventsAsync(Sandbox);
        Assert.That(Kind(first[0]), Is.EqualTo("lifecycle.created"));
    }

    [Test]
    [Defence("the per-sandbox rate budget slows a DNS flood, every query still recorded")]
    public async Task A_flood_of_random_DNS_names_is_slowed_to_the_rate_and_every_query_is_recorded()
    {
        const int Queries = 1500;
        var tag = "f" + Guid.NewGuid().ToString("N")[..6];
        var before = (await BudgetAsync()).GetProperty("throttled").GetInt64();
        var since = await LastSeqAsync();

        var run = await RunScriptAsync($"{DnsProbe.Install}\npython3 /tmp/dns.py --flood {tag} {Queries}");
        var answers = JsonDocument.Parse(run.GetProperty("stdout").GetString()!).RootElement;
        Assert.That(answers.GetProperty("codes").GetProperty("3").GetInt32(), Is.EqualTo(Queries), run.ToString()); // NXDOMAIN, each of them

        // Every query is its own event (different names are never merged) — none lost to the flood.
        var events = await WaitForAsync(all => all.Count(e => Str(e, "host")?.StartsWith(tag, StringComparison.Ordinal) == true) >= Queries, kind: "net.dns", since: since);
        var flood = events.Where(e => Str(e, "host")?.StartsWith(tag, StringComparison.Ordinal) == true).ToList();
        Assert.That(flood.Count, Is.EqualTo(Queries));
        Assert.That(flood.Select(e => Str(e, "host")).Distinct().Count(), Is.EqualTo(Queries));
        Assert.That(flood.All(e => Str(e, "decision") == "deny" && !e.TryGetProperty("count", out _)));

        // The resolver was held to the rate: queries waited, and the log says so.
        Assert.That((await BudgetAsync()).GetProperty("throttled").GetInt64(), Is.GreaterThan(before));
        var throttled = await WaitForAsync(all => all.Any(e => Kind(e) == "audit.throttled"), kind: "audit", since: since);
        Assert.That(throttled.Any(e => Kind(e) == "audit.throttled" && e.GetProperty("throttled").GetInt64() > 0), string.Join('\n', throttled));
    }

    [Test]
    [Defence("the per-sandbox rate budget makes allowed operations wait, none dropped")]
    public async Task A_flood_of_allowed_writes_beyond_the_rate_is_slowed_and_nothing_is_lost()
    {
        const int Writes = 3000;
        var file = $"/workspace/flood-{Guid.NewGuid().ToString("N")[..6]}.log";
        var before = (await BudgetAsync()).GetProperty("throttled").GetInt64();
        var since = await LastSeqAsync();

        var run = await Controller.ExecAsync(Sandbox, $"python3 -c \"\nimport os\nfd = os.open('{file}', os.O_WRONLY | os.O_CREAT | os.O_APPEND)\nfor i in range({Writes}):\n  os.write(fd, b'x')\nos.close(fd)\nprint(os.stat('{file}').st_size)\"", timeout: 600);
        Assert.That(run.GetProperty("stdout").GetString(), Is.EqualTo($"{Writes}\n"), run.ToString());

        // Each write happened and each is on record: the events match what the workload did, exactly.
        static bool Of(JsonElement e, string path) => Kind(e) == "fs.write" && Str(e, "path") == path;
        var events = await WaitForAsync(all => all.Where(e => Of(e, file)).Sum(e => e.GetProperty("bytes").GetInt64()) >= Writes, kind: "fs.write", since: since);
        var writes = events.Where(e => Of(e, file)).ToList();
        Assert.That(writes.Count, Is.EqualTo(Writes));
        Assert.That(writes.Sum(e => e.GetProperty("bytes").GetInt64()), Is.EqualTo(Writes));
        Assert.That(writes.All(e => Str(e, "decision") == "allow" && !e.TryGetProperty("count", out _)), "allowed operations are never aggregated");
        var all = await Controller.EventsAsync(Sandbox);
        Assert.That(all.Select(Seq), Is.EqualTo(Enumerable.Range(1, all.Count).Select(i => (ulong)i)), "no gaps anywhere in the log");

        // Beyond the burst the writes waited for the rate.
        var budget = await BudgetAsync();
        Assert.That(budget.GetProperty("throttled").GetInt64(), Is.GreaterThan(before));
        Assert.That(budget.GetProperty("waited_ms").GetInt64(), Is.GreaterThan(0));
        Assert.That(budget.GetProperty("rate").GetDouble(), Is.EqualTo(Rate));
    }
}
