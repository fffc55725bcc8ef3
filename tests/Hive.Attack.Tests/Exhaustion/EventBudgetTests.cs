using System.Text.Json;

namespace Hive.Attack.Tests.Exhaustion;

/// <summary>
/// A sandbox that fills its event budget from inside: its history is never deleted while it lives
/// (retention of this Controller would keep only 64 KiB), and once the budget (256 KiB here) is
/// reached every new operation that needs an event is refused — files EDQUOT, network refused,
/// exec 507 — after one <c>audit.budget_exhausted</c> event; raising the budget lets it go on.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
[Category(From.Inside)]
public sealed class EventBudgetTests : ExhaustionFixture
{
    private const long Budget = 256 * 1024;

    /// <summary>What the fill script printed (it runs once; the tests share the exhausted sandbox).</summary>
    private JsonElement? _fill;

    protected override string[] ControllerArgs => ["--events-budget", Budget.ToString(System.Globalization.CultureInfo.InvariantCulture), "--events-max-bytes", "65536"];

    protected override object SandboxSpec(string name) => new
    {
        name,
        egress = new { allow = new[] { new { host = "allowed.test" } } },
        fs = new[] { new { mount = "/workspace", acls = new object[] { new { path = "/workspace/**", access = "rw" } } } },
    };

    /// <summary>
    /// From inside, in one command (a command cannot start once the budget is gone): resolve an
    /// allowed name, then write files until refused (20,000 would be 10 times the budget), then try
    /// the network again.
    /// </summary>
    private async Task<JsonElement> FillAsync()
    {
        if (_fill is { } done)
        {
            return done;
        }

        var run = await RunScriptAsync($$"""
            {{DnsProbe.Install}}
            ip=$(python3 /tmp/dns.py allowed.test | python3 -c 'import json,sys; print(json.load(sys.stdin)["addresses"][0])')
            i=0
            while [ $i -lt 20000 ] && echo "file $i" > /workspace/f$i; do i=$((i+1)); done 2>/tmp/fs-error
            echo "files=$i"
            echo "fs_error=$(cat /tmp/fs-error)"
            echo "create=$(touch /workspace/new-file 2>&1)"
            echo "dns=$(python3 /tmp/dns.py allowed.test)"
            code=$(curl -s -o /dev/null -m 20 -w '%{http_code}' http://$ip/); echo "curl_exit=$? http=$code"
            """);
        Assert.That(run.GetProperty("exit_code").GetInt32(), Is.Zero, run.ToString());
        _fill = run;
        return run;
    }

    private static string Line(JsonElement run, string key) =>
        run.GetProperty("stdout").GetString()!.Split('\n').Single(l => l.StartsWith(key + "=", StringComparison.Ordinal))[(key.Length + 1)..];

    [Test]
    [Order(1)]
    [Defence("an exhausted event budget refuses file operations (EDQUOT) and commands (507); the history stays")]
    public async Task Filling_the_event_budget_refuses_new_operations_and_keeps_the_first_events()
    {
        var run = await FillAsync();
        Assert.That(int.Parse(Line(run, "files"), System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(10), run.ToString());
        // Refused where it met the flag: a new file or lookup with EDQUOT; a write to a file it had
        // already opened shows EIO (the kernel reports a failed write so).
        Assert.That(Line(run, "fs_error"), Does.Contain("Disk quota exceeded").Or.Contain("I/O error"), run.ToString());
        Assert.That(Line(run, "create"), Does.Contain("Disk quota exceeded"), run.ToString());
        Assert.That(File.Exists(Path.Combine(Backing(Sandbox), "new-file")), Is.False, "a refused operation did not happen");

        // The next command is refused before it runs, with the documented error.
        var (status, body) = await Controller.SendAsync(HttpMethod.Post, $"/api/v1/hiveboxes/{Sandbox}/exec", """{"command": "touch /workspace/after-exhaustion"}""");
        Assert.That(status, Is.EqualTo(507), body.ToString());
        Assert.That(body.GetProperty("error").GetString(), Does.Contain("event budget is exhausted").And.Contain("/events/budget"));
        Assert.That(File.Exists(Path.Combine(Backing(Sandbox), "after-exhaustion")), Is.False);

        // One clear event says so; the budget reports it.
        var budget = await BudgetAsync();
        Assert.That(budget.GetProperty("exhausted").GetBoolean(), Is.True, budget.ToString());
        Assert.That(budget.GetProperty("used_bytes").GetInt64(), Is.GreaterThanOrEqualTo(Budget));
        Assert.That(budget.GetProperty("refused").GetInt64(), Is.GreaterThanOrEqualTo(2), "the refused file operation and the command");
        var all = await Controller.EventsAsync(Sandbox);
        var exhausted = all.Where(e => Kind(e) == "audit.budget_exhausted").ToList();
        Assert.That(exhausted, Has.Count.EqualTo(1), string.Join('\n', all.TakeLast(5)));
        Assert.That(exhausted[0].GetProperty("budget_bytes").GetInt64(), Is.EqualTo(Budget));
        Assert.That(Str(exhausted[0], "detail"), Does.Contain("refused"));

        // Its history from the very first event is still there — although this Controller's retention
        // keeps 64 KiB of a log, and this one is in several segments of 64 KiB (over 256 KiB in all).
        Assert.That(Kind(all[0]), Is.EqualTo("lifecycle.created"));
        Assert.That(all.Select(Seq), Is.EqualTo(Enumerable.Range(1, all.Count).Select(i => (ulong)i)), "gapless from seq 1");
        var made = Directory.GetFiles(Backing(Sandbox), "f*").Select(f => "/workspace/" + Path.GetFileName(f)).Order(StringComparer.Ordinal);
        var recorded = all.Where(e => Kind(e) == "fs.create" && Str(e, "decision") == "allow").Select(e => Str(e, "path")!).Order(StringComparer.Ordinal);
        Assert.That(recorded, Is.EqualTo(made), "every file it made is on record");
        // What makes the above a proof: retention (64 KiB here) would have deleted whole older segments.
        // How many segments the log has depends on how Sbxd batched the flood (under load a batch can
        // outgrow a segment), so ask only for more than one and more bytes than retention keeps.
        var segments = Directory.GetFiles(Path.Combine(Controller.DataDir, "events", Sandbox), "*.seg");
        Assert.That(segments, Has.Length.GreaterThanOrEqualTo(2), "retention has an older segment it could delete");
        Assert.That(segments.Sum(f => new FileInfo(f).Length), Is.GreaterThan(65536), "the log is larger than retention keeps");
    }

    [Test]
    [Order(2)]
    [Defence("an exhausted event budget refuses DNS and connections before they are decided")]
    public async Task While_the_budget_is_exhausted_the_network_is_refused()
    {
        var run = await FillAsync();
        var dns = JsonDocument.Parse(Line(run, "dns")).RootElement;
        Assert.That(dns.GetProperty("codes").GetProperty("5").GetInt32(), Is.EqualTo(1), run.ToString()); // REFUSED, for an allowed name
        var curl = Line(run, "curl_exit");
        Assert.That(curl, Does.EndWith("http=000"), "the connection was closed without an answer: " + curl);
        Assert.That(curl, Does.Not.StartWith("0 "), curl);

        // Neither reached a decision, so neither is an event: after the budget was reached, no net.* event.
        var all = await Controller.EventsAsync(Sandbox);
        var at = Seq(all.Single(e => Kind(e) == "audit.budget_exhausted"));
        var netAfter = all.Where(e => Kind(e).StartsWith("net.", StringComparison.Ordinal) && Seq(e) > at).ToList();
        Assert.That(netAfter, Is.Empty, string.Join('\n', netAfter));
        Assert.That(all.Count(e => Kind(e) == "net.dns" && Str(e, "host") == "allowed.test"), Is.EqualTo(1), "only the query made before the budget ran out");
    }

    [Test]
    [Order(3)]
    [Defence("raising the event budget lets the sandbox continue, and says what was refused")]
    public async Task Raising_the_budget_lets_the_sandbox_continue()
    {
        await FillAsync();
        var (status, body) = await Controller.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{Sandbox}/events/budget", """{"bytes": "64m"}""");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        Assert.That(body.GetProperty("exhausted").GetBoolean(), Is.False);
        Assert.That(body.GetProperty("budget_bytes").GetInt64(), Is.EqualTo(64L * 1024 * 1024));

        var run = await RunScriptAsync($"echo again > /workspace/after-raise && cat /workspace/after-raise\n{DnsProbe.Install}\npython3 /tmp/dns.py allowed.test");
        Assert.That(run.GetProperty("stdout").GetString(), Does.StartWith("again\n"), run.ToString());
        Assert.That(JsonDocument.Parse(run.GetProperty("stdout").GetString()!.Split('\n')[1]).RootElement.GetProperty("codes").GetProperty("0").GetInt32(), Is.EqualTo(1));

        var changed = (await Controller.EventsAsync(Sandbox, kind: "audit")).Where(e => Kind(e) == "audit.budget_changed").ToList();
        Assert.That(changed, Has.Count.EqualTo(1));
        Assert.That(changed[0].GetProperty("refused").GetInt64(), Is.GreaterThanOrEqualTo(3), "file, network and exec refusals are counted");
        Assert.That(Str(changed[0], "actor"), Does.StartWith("loopback@"));
        var created = await WaitForAsync(all => all.Any(e => Kind(e) == "fs.create" && Str(e, "path") == "/workspace/after-raise"), kind: "fs.create");
        Assert.That(created.Any(e => Str(e, "path") == "/workspace/after-raise"));

        // Nonsense is refused.
        (status, body) = await Controller.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{Sandbox}/events/budget", """{"bytes": -5}""");
        Assert.That(status, Is.EqualTo(400), body.ToString());
        (status, body) = await Controller.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{Sandbox}/events/budget", """{"size": 5}""");
        Assert.That(status, Is.EqualTo(400), body.ToString());
    }
}
