using System.Globalization;
using System.Text.Json;
using Hive.Events.Log;

namespace Hive.Integration.Tests;

/// <summary>
/// The event log end to end: exact, gapless sequences of what happened; SSE that resumes exactly
/// (also across Controller and Sbxd restarts); slow consumers; losslessness under a million operations.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
public sealed class EventsTests : SharedControllerFixture
{
    private static object Fs() => new[]
    {
        new
        {
            backend = "local",
            mount = "/workspace",
            acls = new object[] { new { path = "/workspace/**", access = "rw" }, new { path = "/workspace/secrets/**", access = "deny" } },
        },
    };

    private static string Kind(JsonElement e) => e.GetProperty("kind").GetString()!;

    private static ulong Seq(JsonElement e) => e.GetProperty("seq").GetUInt64();

    private static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ToString() : null;

    private string Backing(string name) => Directory.GetDirectories(Path.Combine(Controller.DataDir, "workspaces", name)).Single();

    [Test]
    public async Task Exec_file_operations_denials_and_policy_changes_form_one_gapless_sequence()
    {
        var name = Names.Unique("ev");
        await Controller.CreateAsync(new { name, fs = Fs() });
        try
        {
            Directory.CreateDirectory(Path.Combine(Backing(name), "secrets"));
            await File.WriteAllTextAsync(Path.Combine(Backing(name), "secrets", "token"), "s3cr3t");
            await Controller.ExecAsync(name, "echo hi > /workspace/a.txt");
            var cat = await Controller.ExecAsync(name, "cat /workspace/a.txt");
            Assert.That(cat.GetProperty("stdout").GetString(), Is.EqualTo("hi\n"));
            var denied = await Controller.ExecAsync(name, "cat /workspace/secrets/token");
            Assert.That(denied.GetProperty("exit_code").GetInt32(), Is.EqualTo(1));
            await Controller.PatchAsync(name, new { fs = new[] { new { mount = "/workspace", acls = new[] { new { path = "/workspace/**", access = "ro" } } } } });

            var all = await Controller.WaitForEventsAsync(name, e => e.Any(x => Kind(x) == "policy.acl"));
            Assert.That(all.Select(Seq), Is.EqualTo(Enumerable.Range(1, all.Count).Select(i => (ulong)i)), "sequence numbers start at 1 and have no gaps");
            Assert.That(all.All(e => Str(e, "sandbox") == name && DateTimeOffset.TryParse(Str(e, "ts"), CultureInfo.InvariantCulture, out _)));

            // The story, in order (resource.usage and fs.* interleave and are checked below; artifact.written
            // comes with the kernel's asynchronous RELEASE of the file, so it may land after exec.finished).
            var story = all.Where(e => !Kind(e).StartsWith("fs.", StringComparison.Ordinal) && Kind(e) is not ("resource.usage" or "artifact.written")).Select(Kind).ToList();
            Assert.That(story, Is.EqualTo(new[]
            {
                "lifecycle.created", "lifecycle.sbxd_started", "lifecycle.started",
                "exec.started", "exec.finished",
                "exec.started", "exec.finished",
                "exec.started", "exec.finished",
                "policy.acl",
            }));

            var execs = all.Where(e => Kind(e).StartsWith("exec.", StringComparison.Ordinal)).ToList();
            Assert.That(execs.Select(e => Str(e, "command")), Is.EqualTo(new[] { "echo hi > /workspace/a.txt", "echo hi > /workspace/a.txt", "cat /workspace/a.txt", "cat /workspace/a.txt", "cat /workspace/secrets/token", "cat /workspace/secrets/token" }));
            Assert.That(execs.Where((_, i) => i % 2 == 1).Select(e => e.GetProperty("exit_code").GetInt32()), Is.EqualTo(new[] { 0, 0, 1 }));
            Assert.That(execs[3].GetProperty("stdout_bytes").GetInt64(), Is.EqualTo(3));
            Assert.That(execs[0].GetProperty("id").GetString(), Is.EqualTo(execs[1].GetProperty("id").GetString()), "started and finished are paired by id");

            List<JsonElement> Between(int pair) => all.SkipWhile(e => !(Kind(e) == "exec.started" && Str(e, "id") == Str(execs[pair * 2], "id")))
                .TakeWhile(e => !(Kind(e) == "exec.finished" && Str(e, "id") == Str(execs[pair * 2], "id"))).ToList();
            var write = Between(0);
            Assert.That(write.Any(e => Kind(e) == "fs.create" && Str(e, "path") == "/workspace/a.txt" && Str(e, "decision") == "allow"), string.Join('\n', write));
            Assert.That(write.Any(e => Kind(e) == "fs.write" && Str(e, "path") == "/workspace/a.txt" && e.GetProperty("bytes").GetInt64() == 3));
            var artifact = all.Single(e => Kind(e) == "artifact.written");
            Assert.That(Seq(artifact), Is.GreaterThan(Seq(write[0])));
            Assert.That(Str(artifact, "path"), Is.EqualTo("/workspace/a.txt"));
            Assert.That(Str(artifact, "sha256"), Is.EqualTo(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("hi\n"u8))));
            // The read itself may be served from the page cache; opening the file always reaches SbxFuse.
            Assert.That(Between(1).Any(e => Kind(e) is "fs.open" or "fs.read" && Str(e, "path") == "/workspace/a.txt"), string.Join('\n', Between(1)));
            var denial = Between(2).Where(e => Str(e, "decision") == "deny").ToList();
            Assert.That(denial, Is.Not.Empty);
            Assert.That(denial.All(e => Str(e, "path")!.StartsWith("/workspace/secrets", StringComparison.Ordinal) && e.GetProperty("errno").GetInt32() == 13));

            var policy = all.Single(e => Kind(e) == "policy.acl");
            Assert.That(Str(policy, "target"), Is.EqualTo("fs:/workspace"));
            Assert.That(Str(policy, "actor"), Does.StartWith("loopback@"));
            Assert.That(policy.GetProperty("rules")[0].GetProperty("access").GetString(), Is.EqualTo("ro"));

            // Filters: kinds by prefix, decisions (deny matches deny-ro too), and an SSE stream agrees with history.
            var onlyWrites = await Controller.EventsAsync(name, kind: "fs.write");
            Assert.That(onlyWrites.Select(Kind).Distinct(), Is.EqualTo(new[] { "fs.write" }));
            var denials = await Controller.EventsAsync(name, decision: "deny");
            Assert.That(denials.Select(Seq), Is.EqualTo(all.Where(e => Str(e, "decision")?.StartsWith("deny", StringComparison.Ordinal) == true).Select(Seq)));
            await using var sse = await SseClient.OpenAsync(Controller.BaseAddress, $"/api/v1/hiveboxes/{name}/events?kind=exec,policy");
            var streamed = await sse.ReadUntilAsync(e => Kind(e) == "policy.acl", TimeSpan.FromSeconds(20));
            Assert.That(streamed.Select(Seq), Is.EqualTo(all.Where(e => Kind(e).StartsWith("exec.", StringComparison.Ordinal) || Kind(e) == "policy.acl").Select(Seq)));
            Assert.That(sse.LastId, Is.EqualTo(Seq(policy).ToString(CultureInfo.InvariantCulture)));

            // Pages: limit + cursor walk the same history.
            var paged = new List<ulong>();
            var cursor = "0";
            while (true)
            {
                var (status, page) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}/events?follow=false&limit=7&cursor={cursor}");
                Assert.That(status, Is.EqualTo(200), page.ToString());
                paged.AddRange(page.GetProperty("events").EnumerateArray().Select(Seq));
                cursor = page.GetProperty("next_cursor").GetString()!;
                if (!page.GetProperty("has_more").GetBoolean())
                {
                    break;
                }
            }

            Assert.That(paged.Take(all.Count), Is.EqualTo(all.Select(Seq)));
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }

        // A destroyed sandbox's events stay queryable; its log ends with lifecycle.destroyed.
        var after = await Controller.EventsAsync(name, kind: "lifecycle");
        Assert.That(Kind(after[^1]), Is.EqualTo("lifecycle.destroyed"));

        // Created again under the same name, it continues the same log — and its new spools are read
        // from their start (regression: positions of the previous incarnation were applied to them).
        await Controller.CreateAsync(new { name, fs = Fs() });
        try
        {
            await Controller.ExecAsync(name, "echo again > /workspace/again.txt");
            var reborn = await Controller.WaitForEventsAsync(name, e => e.Any(x => Kind(x) == "exec.finished" && Str(x, "command") == "echo again > /workspace/again.txt"), kind: "exec,lifecycle,fs.create");
            Assert.That(reborn.Any(x => Kind(x) == "exec.finished" && Str(x, "command") == "echo again > /workspace/again.txt"), string.Join('\n', reborn.TakeLast(5)));
            Assert.That(reborn.Any(x => Kind(x) == "fs.create" && Str(x, "path") == "/workspace/again.txt"));
            Assert.That(Seq(reborn.Last(x => Kind(x) == "lifecycle.created")), Is.GreaterThan(Seq(after[^1])));
            var whole = await Controller.EventsAsync(name);
            Assert.That(whole.Select(Seq), Is.EqualTo(Enumerable.Range(1, whole.Count).Select(i => (ulong)i)), "one gapless log across both lives");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
        var (missing, _) = await Controller.SendAsync(HttpMethod.Get, "/api/v1/hiveboxes/never-existed/events?follow=false");
        Assert.That(missing, Is.EqualTo(404));
        var (bad, body) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}/events?follow=false&since=abc");
        Assert.That(bad, Is.EqualTo(400), body.ToString());
        (bad, body) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}/events?follow=false&kind=fs;rm");
        Assert.That(bad, Is.EqualTo(400), body.ToString());
        (bad, body) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}/events?limit=0&follow=false");
        Assert.That(bad, Is.EqualTo(400), body.ToString());
    }

    [Test]
    public async Task Resume_is_exact_across_disconnects_a_Controller_restart_and_a_Sbxd_restart()
    {
        await using var hive = await ControllerProcess.StartAsync(null, null, "--usage-interval", "0.5", "--events-heartbeat", "0.3");
        var name = Names.Unique("resume");
        await hive.CreateAsync(new { name, fs = Fs() });
        var path = $"/api/v1/hiveboxes/{name}/events";
        var seen = new List<ulong>();

        async Task<string> RoundAsync(string command, string? lastId)
        {
            await hive.ExecAsync(name, command);
            await using var sse = await SseClient.OpenAsync(hive.BaseAddress, path, lastId);
            var got = await sse.ReadUntilAsync(e => Kind(e) == "exec.finished" && Str(e, "command") == command, TimeSpan.FromSeconds(60));
            if (lastId is not null)
            {
                Assert.That(Seq(got[0]), Is.EqualTo(ulong.Parse(lastId, CultureInfo.InvariantCulture) + 1), $"resumed exactly after {lastId}");
            }

            seen.AddRange(got.Select(Seq));
            return sse.LastId!;
        }

        var id = await RoundAsync("echo 1 > /workspace/one", null);
        id = await RoundAsync("echo 2 > /workspace/two", id);

        await hive.KillAsync();
        await hive.StartProcessAsync();
        id = await RoundAsync("echo 3 > /workspace/three", id);

        var sbxdPid = File.ReadAllText(Path.Combine(hive.StateDir(name), "sbxd.pid")).Trim();
        await Host.RunAsync("kill", "-KILL", sbxdPid);
        // Exec reaches the agent without Sbxd; its events wait in the spool until a new Sbxd takes them in.
        id = await RoundAsync("echo 4 > /workspace/four", id);
        Assert.That(File.ReadAllText(Path.Combine(hive.StateDir(name), "sbxd.pid")).Trim(), Is.Not.EqualTo(sbxdPid), "a new Sbxd took over");
        id = await RoundAsync("echo 5 > /workspace/five", id);

        Assert.That(seen, Is.EqualTo(Enumerable.Range(1, seen.Count).Select(i => (ulong)i)), "across every reconnect: each event exactly once, in order");
        var history = await hive.EventsAsync(name);
        Assert.That(history.Select(Seq).Take(seen.Count), Is.EqualTo(seen));
        Assert.That(history.Count(e => Kind(e) == "lifecycle.sbxd_started"), Is.EqualTo(2));

        // An idle stream (nothing matches) still gets keep-alive comments.
        await using (var idle = await SseClient.OpenAsync(hive.BaseAddress, path + "?kind=net"))
        {
            Assert.That(await idle.NextAsync(TimeSpan.FromSeconds(1.5)), Is.Null);
            Assert.That(idle.Comments, Is.GreaterThanOrEqualTo(2));
        }

        await hive.DestroyAsync(name);
    }

    [Test]
    public async Task A_slow_consumer_loses_nothing_and_holds_up_no_one()
    {
        var name = Names.Unique("slow");

        // Every file under secrets/ is denied, the directory itself is not: each stat of a new name is
        // its own denial (identical denials would be aggregated into one event).
        var fs = new[] { new { backend = "local", mount = "/workspace", acls = new object[] { new { path = "/workspace/**", access = "rw" }, new { path = "/workspace/secrets/*", access = "deny" } } } };
        await Controller.CreateAsync(new { name, fs });
        try
        {
            Directory.CreateDirectory(Path.Combine(Backing(name), "secrets"));
            var path = $"/api/v1/hiveboxes/{name}/events?kind=fs,exec";
            await using var slow = await SseClient.OpenAsync(Controller.BaseAddress, path, receiveBuffer: 4096);
            await using var fast = await SseClient.OpenAsync(Controller.BaseAddress, path);
            const string Workload = "python3 -c \"\nimport os\nn = 0\nfor i in range(20000):\n  try: os.stat('/workspace/secrets/x%d' % i)\n  except PermissionError: n += 1\nprint(n)\"";

            // ~20,000 events (~5 MB of SSE) while the slow client reads nothing.
            var run = await Controller.ExecAsync(name, Workload, timeout: 300);
            Assert.That(run.GetProperty("stdout").GetString(), Is.EqualTo("20000\n"), run.ToString());
            var fastEvents = await fast.ReadUntilAsync(e => Kind(e) == "exec.finished", TimeSpan.FromSeconds(60));
            Assert.That(fastEvents.Count(e => Str(e, "decision") == "deny"), Is.EqualTo(20000));
            Assert.That(fastEvents.Where(e => Str(e, "decision") == "deny").Select(e => Str(e, "path")).Distinct().Count(), Is.EqualTo(20000));

            // The slow one now drains at its own pace and gets exactly the same events.
            var slowEvents = await slow.ReadUntilAsync(e => Kind(e) == "exec.finished", TimeSpan.FromSeconds(180), pace: () => Task.CompletedTask);
            Assert.That(slowEvents.Select(Seq), Is.EqualTo(fastEvents.Select(Seq)));

            // 20,000 events in a second or two are well within the default burst: nothing waited.
            var (_, budget) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}/events/budget");
            Assert.That(budget.GetProperty("throttled").GetInt64(), Is.Zero, budget.ToString());

            // And the sandbox is not held up by it: another command runs and is seen at once by a new reader.
            await Controller.ExecAsync(name, "true");
            var latest = await Controller.WaitForEventsAsync(name, e => e.Count(x => Kind(x) == "exec.finished") == 2, kind: "exec");
            Assert.That(latest.Count(x => Kind(x) == "exec.finished"), Is.EqualTo(2));
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task A_million_denied_file_operations_are_all_counted_in_their_events()
    {
        var name = Names.Unique("million");
        await Controller.CreateAsync(new { name, fs = Fs(), cpus = 2 });
        try
        {
            Directory.CreateDirectory(Path.Combine(Backing(name), "secrets"));

            // Each stat of a path under a denied directory is exactly one FUSE lookup (a denial is never cached): two loops of 500,000.
            const string Loop = "python3 -c \"\nimport os\nn = 0\nfor i in range(500000):\n  try: os.stat('/workspace/secrets/x')\n  except PermissionError: n += 1\nprint(n)\"";
            var run = await Controller.ExecAsync(name, $"({Loop}) & ({Loop}) & wait", timeout: 900);
            Assert.That(run.GetProperty("stdout").GetString(), Is.EqualTo("500000\n500000\n"), run.ToString());

            var dir = Path.Combine(Controller.DataDir, "events", name);
            long denied = 0;
            long events = 0;
            ulong last = 0;
            var deadline = DateTime.UtcNow.AddSeconds(120);
            var entries = new List<LogEntry>(4096);
            using var reader = new EventLogReader(dir, 0);
            while (DateTime.UtcNow < deadline && denied < 1_000_000)
            {
                entries.Clear();
                if (reader.Read(entries, entries.Capacity) == 0)
                {
                    await Task.Delay(100);
                    continue;
                }

                foreach (var entry in entries)
                {
                    Assert.That(entry.Seq, Is.EqualTo(last + 1), "no gaps");
                    last = entry.Seq;
                    var e = Hive.Protos.V1.Event.Parser.ParseFrom(entry.Payload.Span);
                    if (e.Kind == "fs.getattr" && e.Decision == "deny" && e.Fs.Path == "/workspace/secrets")
                    {
                        denied += (long)Math.Max(1UL, e.Count); // identical denials come aggregated, with their count
                        events++;
                    }
                }
            }

            Assert.That(denied, Is.EqualTo(1_000_000));
            Assert.That(events, Is.LessThan(10_000), "a flood of one denial is a handful of aggregates, not a million events");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task Every_sandbox_merged_with_a_resumable_compound_cursor()
    {
        var a = Names.Unique("mrg-a");
        var b = Names.Unique("mrg-b");
        await Controller.CreateAsync(new { name = a });
        await Controller.CreateAsync(new { name = b });
        try
        {
            await Controller.ExecAsync(a, "echo from-a");
            await Controller.ExecAsync(b, "echo from-b");
            await using var sse = await SseClient.OpenAsync(Controller.BaseAddress, "/api/v1/events?kind=exec.finished");
            var both = new HashSet<string>();
            var got = await sse.ReadUntilAsync(e => Kind(e) == "exec.finished" && both.Add(Str(e, "sandbox")!) && both.Contains(a) && both.Contains(b), TimeSpan.FromSeconds(30));
            var cursor = sse.LastId!;
            Assert.That(cursor, Does.Contain(a + ":").And.Contain(b + ":"));

            await Controller.ExecAsync(b, "echo again-b");
            await using var resumed = await SseClient.OpenAsync(Controller.BaseAddress, "/api/v1/events?kind=exec.finished", cursor);
            var next = await resumed.ReadUntilAsync(e => Str(e, "command") == "echo again-b", TimeSpan.FromSeconds(30));
            Assert.That(next.Select(e => Str(e, "command")), Is.EqualTo(new[] { "echo again-b" }), "nothing before the cursor is repeated");

            var (status, page) = await Controller.SendAsync(HttpMethod.Get, "/api/v1/events?follow=false&kind=exec.finished&limit=10000");
            Assert.That(status, Is.EqualTo(200));
            var sandboxes = page.GetProperty("events").EnumerateArray().Select(e => Str(e, "sandbox")).ToHashSet();
            Assert.That(sandboxes, Does.Contain(a).And.Contain(b));
            var (bad, _) = await Controller.SendAsync(HttpMethod.Get, "/api/v1/events?follow=false&cursor=../x:1");
            Assert.That(bad, Is.EqualTo(400));
            _ = got;
        }
        finally
        {
            await Controller.DestroyAsync(a);
            await Controller.DestroyAsync(b);
        }
    }
}

/// <summary><c>GET /api/v1/analytics</c>: sampled by the Controller, kept in SQLite across restarts.</summary>
[TestFixture]
[CancelAfter(300_000)]
public sealed class AnalyticsTests
{
    [Test]
    public async Task Samples_cover_host_and_sandboxes_and_survive_a_restart()
    {
        await using var hive = await ControllerProcess.StartAsync(null, null, "--analytics-interval", "0.5");
        var name = Names.Unique("stats");
        await hive.CreateAsync(new { name });
        try
        {
            JsonElement body = default;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (DateTime.UtcNow < deadline)
            {
                (_, body) = await hive.SendAsync(HttpMethod.Get, "/api/v1/analytics?range=300");
                if (body.GetProperty("samples").EnumerateArray().Any(s => s.GetProperty("sandboxes").EnumerateArray().Any(x => x.GetProperty("id").GetString() == name)))
                {
                    break;
                }

                await Task.Delay(250);
            }

            Assert.That(body.GetProperty("interval_secs").GetInt32(), Is.EqualTo(1));
            var sample = body.GetProperty("samples").EnumerateArray().Last(s => s.GetProperty("sandboxes").GetArrayLength() > 0);
            Assert.That(sample.GetProperty("sandbox_count").GetInt32(), Is.EqualTo(1));
            Assert.That(sample.GetProperty("host_memory_total").GetInt64(), Is.GreaterThan(sample.GetProperty("host_memory_used").GetInt64()));
            Assert.That(sample.GetProperty("host_cpu_percent").GetDouble(), Is.InRange(0, 100));
            var mine = sample.GetProperty("sandboxes").EnumerateArray().Single(x => x.GetProperty("id").GetString() == name);
            Assert.That(mine.GetProperty("memory_usage").GetInt64(), Is.GreaterThan(0));
            Assert.That(mine.GetProperty("memory_limit").GetInt64(), Is.EqualTo(512L << 20));
            var oldest = body.GetProperty("samples")[0].GetProperty("timestamp").GetInt64();

            await hive.KillAsync();
            await hive.StartProcessAsync();
            var (status, after) = await hive.SendAsync(HttpMethod.Get, "/api/v1/analytics");
            Assert.That(status, Is.EqualTo(200));
            Assert.That(after.GetProperty("samples")[0].GetProperty("timestamp").GetInt64(), Is.LessThanOrEqualTo(oldest), "history survives a restart");
            var (bad, _) = await hive.SendAsync(HttpMethod.Get, "/api/v1/analytics?range=-5");
            Assert.That(bad, Is.EqualTo(400));
        }
        finally
        {
            await hive.DestroyAsync(name);
        }
    }
}
