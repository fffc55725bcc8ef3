using System.Runtime.InteropServices;
using Hive.Agent.Exec;
using Hive.Agent.Processes;
using Hive.Interop;

namespace Hive.Agent.Tests;

/// <summary>The pump that moves command output: what a command wrote is never lost to a slow pump.</summary>
[CancelAfter(30_000)]
public sealed class PipePumpTests
{
    private static unsafe (int Read, int Write) Pipe()
    {
        var fds = stackalloc int[2];
        Assert.That(Libc.pipe2(fds, Libc.O_CLOEXEC), Is.Zero, "pipe2");
        return (fds[0], fds[1]);
    }

    private static unsafe void WriteAll(int fd, byte[] data)
    {
        fixed (byte* p = data)
        {
            Assert.That((long)Libc.write(fd, p, (nuint)data.Length), Is.EqualTo(data.Length), "write " + Marshal.GetLastPInvokeError());
        }
    }

    [Test]
    public async Task Abandoning_a_pipe_first_takes_what_it_already_holds()
    {
        // Output of a command that has exited, still in the pipe because the pump thread was busy,
        // with a background child keeping the write end open (so no EOF will come).
        var pump = new PipePump();
        var output = Pipe();
        var data = new byte[60 * 1024];
        Random.Shared.NextBytes(data);
        WriteAll(output.Write, data);

        // Hold the pump thread inside another pipe's data callback until both requests are queued,
        // so the registration and the abandonment are handled in one go, before any readiness event.
        var busy = Pipe();
        WriteAll(busy.Write, [1]);
        using var holding = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        pump.Read(busy.Read, _ => { holding.Set(); release.Wait(); }, static () => { });
        Assert.That(holding.Wait(TimeSpan.FromSeconds(10)), Is.True, "the pump thread never took the busy pipe");

        var collector = new OutputCollector(1024 * 1024);
        pump.Read(output.Read, collector.Append, collector.End);
        pump.Abandon(output.Read);
        release.Set();

        await collector.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(collector.Result("stdout"), Is.EqualTo(data), "bytes the command wrote before it exited");
        Libc.close(output.Write);
        Libc.close(busy.Write);
        pump.Abandon(busy.Read);
    }
}
