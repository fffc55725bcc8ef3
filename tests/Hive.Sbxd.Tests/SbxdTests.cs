using Google.Protobuf;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Sbxd.Tests;

[CancelAfter(300_000)]
public sealed class SbxdTests
{
    private static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";

    [Test]
    public async Task Runs_the_agent_in_a_libc_less_image_and_destroys_everything()
    {
        await using var sandbox = new SbxdProcess(UniqueName("sx"));
        await sandbox.StartAsync();

        var echo = await sandbox.ExecAsync("echo hello; echo $FROM_SPEC $HIVE_SANDBOX; cat /proc/self/oom_score_adj; hostname; exit 4");
        Assert.That(echo.ExitCode, Is.EqualTo(4));
        Assert.That(echo.Stdout.ToStringUtf8(), Is.EqualTo($"hello\nyes {sandbox.Name}\n1000\n{sandbox.Name}\n"));

        // The agent is PID 1 — seen from the host: inside, /proc/1 is hidden (hidepid=ptraceable, the agent is not dumpable).
        var init = (await sandbox.StatusAsync()).ContainerPid;
        Assert.That(File.ReadAllText($"/proc/{init}/cmdline").Replace('\0', ' '), Does.StartWith("/.hive/agent/hive-agent --listen-fd 3"), "the agent is the container's init");
        Assert.That(File.ReadLines($"/proc/{init}/status").First(l => l.StartsWith("NSpid:", StringComparison.Ordinal)), Does.EndWith("\t1"), "PID 1 in its namespace");
        var hidden = await sandbox.ExecAsync("cat /proc/1/cmdline");
        Assert.That(hidden.ExitCode, Is.Not.Zero, "/proc/1 is out of the sandbox's reach");
        var ro = await sandbox.ExecAsync("touch /.hive/x 2>&1 || echo ro");
        Assert.That(ro.Stdout.ToStringUtf8(), Does.Contain("ro"));
        var net = await sandbox.ExecAsync("ls /sys/class/net");
        Assert.That(net.Stdout.ToStringUtf8().Trim(), Is.EqualTo("lo"));
        var caps = await sandbox.ExecAsync("grep CapEff /proc/self/status");
        Assert.That(caps.Stdout.ToStringUtf8(), Does.Contain("00000000000000eb"), "the minimal capability set (OciSpec.Capabilities)");

        var status = await sandbox.StatusAsync();
        Assert.That(status.CommandsExecuted, Is.EqualTo(5));
        Assert.That(status.MemoryUsageBytes, Is.GreaterThan(0));
        Assert.That(status.PidsCurrent, Is.GreaterThan(0));

        var destroyed = await sandbox.Channel.UnaryAsync<DestroyRequest, DestroyResponse>("/hive.v1.Sandbox/Destroy", new DestroyRequest(), new CallOptions(TimeSpan.FromSeconds(60)));
        Assert.That(destroyed.Destroyed, Is.True);
        Assert.That(await sandbox.LeftoversAsync(), Is.Empty);
    }

    [Test]
    public async Task A_restarted_sbxd_adopts_the_running_container()
    {
        await using var sandbox = new SbxdProcess(UniqueName("sr"));
        await sandbox.StartAsync();
        await sandbox.ExecAsync("echo kept > /root/file; (sleep 300 &)");
        var before = await sandbox.StatusAsync();

        await sandbox.KillAsync();
        await sandbox.StartAsync();

        var after = await sandbox.StatusAsync();
        Assert.That(after.ContainerPid, Is.EqualTo(before.ContainerPid), "same container, not a new one");
        var file = await sandbox.ExecAsync("cat /root/file; ps | grep -c 'sleep 300'");
        Assert.That(file.Stdout.ToStringUtf8(), Does.StartWith("kept\n"));
        Assert.That(after.CommandsExecuted, Is.EqualTo(1), "the command counter survives the restart");

        Assert.That(await sandbox.DestroyCommandAsync(), Is.Zero);
        Assert.That(await sandbox.LeftoversAsync(), Is.Empty);
    }

    [Test]
    public async Task Memory_limit_oom_kills_the_command_not_the_agent()
    {
        await using var sandbox = new SbxdProcess(UniqueName("so"), memory: 96UL << 20);
        await sandbox.StartAsync();
        var hog = await sandbox.ExecAsync("x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived", 60_000);
        Assert.That(hog.OomKilled, Is.True, hog.ToString());
        Assert.That(hog.Stdout.ToStringUtf8(), Does.Not.Contain("survived"));
        var alive = await sandbox.ExecAsync("echo ok");
        Assert.That(alive.Stdout.ToStringUtf8(), Is.EqualTo("ok\n"));
        Assert.That(await sandbox.DestroyCommandAsync(), Is.Zero);
    }

    [Test]
    public async Task Pids_limit_stops_a_fork_bomb()
    {
        await using var sandbox = new SbxdProcess(UniqueName("sp"), pids: 64);
        await sandbox.StartAsync();
        var bomb = await sandbox.ExecAsync("for i in $(seq 150); do sleep 20 & done; wait", 3000);
        Assert.That(bomb.Stderr.ToStringUtf8(), Does.Contain("fork").IgnoreCase.Or.Contain("resource").IgnoreCase.Or.Contain("process limit"), bomb.ToString());
        var status = await sandbox.StatusAsync();
        Assert.That(status.PidsCurrent, Is.LessThanOrEqualTo(64));
        Assert.That(await sandbox.DestroyCommandAsync(), Is.Zero);
        Assert.That(await sandbox.LeftoversAsync(), Is.Empty);
    }

    [Test]
    public async Task Destroy_command_cleans_up_after_a_dead_sbxd()
    {
        await using var sandbox = new SbxdProcess(UniqueName("sd"));
        await sandbox.StartAsync();
        await sandbox.KillAsync();
        Assert.That(await sandbox.DestroyCommandAsync(), Is.Zero);
        Assert.That(await sandbox.LeftoversAsync(), Is.Empty);
        Assert.That(await sandbox.DestroyCommandAsync(), Is.Zero, "destroy is idempotent");
    }

    [Test]
    public async Task Files_stream_through_sbxd()
    {
        await using var sandbox = new SbxdProcess(UniqueName("sf"));
        await sandbox.StartAsync();
        var data = new byte[(2 << 20) + 5];
        Random.Shared.NextBytes(data);

        async IAsyncEnumerable<WriteFileRequest> Messages()
        {
            yield return new WriteFileRequest { Header = new WriteFileHeader { Path = "/root/a/b.bin", CreateParents = true } };
            for (var o = 0; o < data.Length; o += 65536)
            {
                await Task.Yield();
                yield return new WriteFileRequest { Data = ByteString.CopyFrom(data, o, Math.Min(65536, data.Length - o)) };
            }
        }

        var written = await sandbox.Channel.ClientStreamingAsync<WriteFileRequest, WriteFileResponse>("/hive.v1.Sandbox/WriteFile", Messages(), new CallOptions(TimeSpan.FromSeconds(60)));
        Assert.That(written.Size, Is.EqualTo((ulong)data.Length));
        using var read = new MemoryStream();
        await foreach (var chunk in sandbox.Channel.ServerStreamingAsync<ReadFileRequest, FileChunk>("/hive.v1.Sandbox/ReadFile", new ReadFileRequest { Path = "/root/a/b.bin" }, new CallOptions(TimeSpan.FromSeconds(60))))
        {
            read.Write(chunk.Data.Span);
        }

        Assert.That(read.ToArray(), Is.EqualTo(data));
        var upper = Path.Combine(sandbox.StateDir, "upper", "root", "a", "b.bin");
        Assert.That(File.Exists(upper), Is.True, "the sandbox's writes land in its own overlay upper layer");
        Assert.That(File.Exists(Path.Combine(TestEnvironment.ImageRootfs, "root", "a", "b.bin")), Is.False, "the image stays untouched");
        Assert.That(await sandbox.DestroyCommandAsync(), Is.Zero);
    }
}
