using System.Diagnostics;
using Google.Protobuf;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Agent.Tests;

[CancelAfter(60_000)]
public sealed class ExecTests
{
    private AgentProcess _agent = null!;

    [OneTimeSetUp]
    public async Task StartAsync() => _agent = await AgentProcess.StartAsync();

    [OneTimeTearDown]
    public async Task StopAsync() => await _agent.DisposeAsync();

    private Task<ExecResponse> ExecAsync(ExecRequest request) =>
        _agent.Channel.UnaryAsync<ExecRequest, ExecResponse>("/hive.v1.Agent/Exec", request, new CallOptions(TimeSpan.FromSeconds(30)));

    private Task<ExecResponse> ExecAsync(string command) => ExecAsync(new ExecRequest { Command = command });

    [Test]
    public async Task Stdout_stderr_and_exit_code()
    {
        var r = await ExecAsync("echo out; echo err >&2; exit 3");
        Assert.That(r.ExitCode, Is.EqualTo(3));
        Assert.That(r.Stdout.ToStringUtf8(), Is.EqualTo("out\n"));
        Assert.That(r.Stderr.ToStringUtf8(), Is.EqualTo("err\n"));
        Assert.That(r.TimedOut, Is.False);
        Assert.That(r.DurationUs, Is.GreaterThan(0));
    }

    [Test]
    public async Task Timeout_kills_the_whole_process_group()
    {
        var dir = Directory.CreateTempSubdirectory("hive-agent-timeout-").FullName;
        try
        {
            var bgFile = Path.Combine(dir, "bg.pid");
            var watch = Stopwatch.StartNew();
            var r = await ExecAsync(new ExecRequest { Command = $"sleep 100 & echo $! > {bgFile}; sleep 100", TimeoutMs = 500 });
            Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
            Assert.That(r.TimedOut, Is.True);
            Assert.That(r.Signal, Is.EqualTo(9));
            Assert.That(r.ExitCode, Is.EqualTo(137));
            var background = int.Parse(File.ReadAllText(bgFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (IsAlive(background) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            Assert.That(IsAlive(background), Is.False, "the background sleep in the same group must be killed too");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task Output_is_capped_with_a_marker()
    {
        var r = await ExecAsync(new ExecRequest { Command = "head -c 300000 /dev/zero | tr '\\0' x", MaxOutputBytes = 1000 });
        Assert.That(r.StdoutTruncated, Is.True);
        Assert.That(r.StdoutBytes, Is.EqualTo(300000));
        var text = r.Stdout.ToStringUtf8();
        Assert.That(text, Does.StartWith(new string('x', 1000)));
        Assert.That(text, Does.Contain("truncated"));
        Assert.That(r.ExitCode, Is.Zero);
    }

    [Test]
    public async Task Environment_cwd_and_stdin()
    {
        var request = new ExecRequest { Command = "pwd; echo \"$GREETING\"; cat; env | grep -c -E '^(HIVE_AGENT_|DOTNET_|LD_LIBRARY_PATH)' || true", Cwd = "/tmp", Stdin = ByteString.CopyFromUtf8("from-stdin\n") };
        request.Env["GREETING"] = "hello world";
        var r = await ExecAsync(request);
        Assert.That(r.Stdout.ToStringUtf8(), Is.EqualTo("/tmp\nhello world\nfrom-stdin\n0\n"));
    }

    [Test]
    public async Task Sigpipe_has_its_default_disposition_in_children()
    {
        var r = await ExecAsync("yes | head -n 2");
        Assert.That(r.ExitCode, Is.Zero);
        Assert.That(r.Stdout.ToStringUtf8(), Is.EqualTo("y\ny\n"));
    }

    [Test]
    public async Task Daemonized_children_do_not_hang_exec()
    {
        var watch = Stopwatch.StartNew();
        var r = await ExecAsync("(sleep 3 &) ; echo done");
        Assert.That(r.Stdout.ToStringUtf8(), Is.EqualTo("done\n"));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(2.5)));
    }

    [Test]
    public void Missing_cwd_is_invalid_argument()
    {
        var ex = Assert.ThrowsAsync<RpcException>(() => ExecAsync(new ExecRequest { Command = "true", Cwd = "/does/not/exist" }))!;
        Assert.That(ex.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
    }

    [Test]
    public async Task Children_are_reaped_and_oom_adjusted()
    {
        var r = await ExecAsync("cat /proc/self/oom_score_adj");
        Assert.That(r.Stdout.ToStringUtf8().Trim(), Is.EqualTo("1000"));
        await ExecAsync("(sleep 0.1 &); true");
        await Task.Delay(500);
        var zombies = Directory.EnumerateDirectories("/proc")
            .Where(d => int.TryParse(Path.GetFileName(d), out _))
            .Select(d => { try { return File.ReadAllText(Path.Combine(d, "stat")); } catch (IOException) { return string.Empty; } })
            .Where(stat => stat.Length > 0)
            .Select(stat => stat[(stat.LastIndexOf(')') + 2)..].Split(' '))
            .Count(f => f[0] == "Z" && f[1] == _agent.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(zombies, Is.Zero);
    }

    [Test]
    public async Task Concurrent_execs()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => ExecAsync($"echo {i}")));
        Assert.That(results.Select(r => r.Stdout.ToStringUtf8().Trim()), Is.EqualTo(Enumerable.Range(0, 20).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
    }

    private static bool IsAlive(int pid) => Hive.Interop.ProcFs.IsAlive(pid);
}
