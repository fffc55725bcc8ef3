using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Hive.Interop.Tests;

/// <summary>Named pipes as Sbxd uses them for the agent's output: opened, waited on, measured.</summary>
public sealed class FifoTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("hive-fifo-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task PollFd_matches_the_C_layout()
    {
        var exe = Path.Combine(_dir, "poll_layout");
        using (var gcc = Process.Start("gcc", ["-Wall", "-Werror", "-o", exe, Path.Combine(AppContext.BaseDirectory, "native", "poll_layout.c")]))
        {
            await gcc.WaitForExitAsync();
            Assert.That(gcc.ExitCode, Is.Zero);
        }

        using var run = Process.Start(new ProcessStartInfo(exe) { RedirectStandardOutput = true })!;
        var c = (await run.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToDictionary(p => p[0], p => int.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(Marshal.SizeOf<Libc.PollFd>(), Is.EqualTo(c["sizeof"]));
        Assert.That((int)Marshal.OffsetOf<Libc.PollFd>(nameof(Libc.PollFd.Fd)), Is.EqualTo(c["fd"]));
        Assert.That((int)Marshal.OffsetOf<Libc.PollFd>(nameof(Libc.PollFd.Events)), Is.EqualTo(c["events"]));
        Assert.That((int)Marshal.OffsetOf<Libc.PollFd>(nameof(Libc.PollFd.Revents)), Is.EqualTo(c["revents"]));
    }

    [Test]
    public void A_fifo_opened_for_reading_and_writing_reports_what_it_holds_and_wakes_its_reader()
    {
        var path = Path.Combine(_dir, "fifo");
        Assert.That(Libc.mkfifo(path, Convert.ToUInt32("600", 8)), Is.Zero);
        using var reader = Libc.OpenFifo(path, Libc.O_RDWR);
        Assert.That(Libc.TrySetPipeSize(reader, 1 << 20), Is.True);
        using var writer = new FileStream(Libc.OpenFifo(path, Libc.O_WRONLY), FileAccess.Write, bufferSize: 0);
        Assert.That(Libc.BytesAvailable(reader), Is.Zero);

        var woke = Task.Run(() => Libc.WaitReadable(reader));
        writer.Write("hello"u8);
        Assert.That(woke.Wait(TimeSpan.FromSeconds(10)), Is.True, "poll returns once data arrives");
        Assert.That(Libc.BytesAvailable(reader), Is.EqualTo(5));
    }

    [Test]
    public void Only_a_fifo_is_opened_and_never_through_a_symlink()
    {
        var file = Path.Combine(_dir, "file");
        File.WriteAllText(file, "x");
        Assert.That(() => Libc.OpenFifo(file, Libc.O_RDWR), Throws.InstanceOf<IOException>().With.Message.Contains("not a FIFO"));

        var fifo = Path.Combine(_dir, "fifo");
        Assert.That(Libc.mkfifo(fifo, Convert.ToUInt32("600", 8)), Is.Zero);
        var link = Path.Combine(_dir, "link");
        File.CreateSymbolicLink(link, fifo);
        var refused = Assert.Throws<SyscallException>(() => Libc.OpenFifo(link, Libc.O_RDWR));
        Assert.That(refused!.Errno, Is.EqualTo(40), "ELOOP");
    }
}
