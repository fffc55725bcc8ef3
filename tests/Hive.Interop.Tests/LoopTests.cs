using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Hive.Interop.Tests;

/// <summary>Loop devices: the mirrored structs match the kernel's, and an attached device detaches itself at its last close.</summary>
public sealed class LoopTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("hive-loop-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Loop_structs_match_the_kernel_headers()
    {
        var exe = Path.Combine(_dir, "loop_layout");
        using (var gcc = Process.Start("gcc", ["-Wall", "-Werror", "-o", exe, Path.Combine(AppContext.BaseDirectory, "native", "loop_layout.c")]))
        {
            await gcc.WaitForExitAsync();
            Assert.That(gcc.ExitCode, Is.Zero);
        }

        using var run = Process.Start(new ProcessStartInfo(exe) { RedirectStandardOutput = true })!;
        var c = (await run.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).ToDictionary(p => p[0], p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Multiple(() =>
        {
            Assert.That(Marshal.SizeOf<Libc.LoopInfo64>(), Is.EqualTo(c["sizeof(loop_info64)"]));
            Assert.That((long)Marshal.OffsetOf<Libc.LoopInfo64>(nameof(Libc.LoopInfo64.Device)), Is.EqualTo(c["loop_info64.lo_device"]));
            Assert.That((long)Marshal.OffsetOf<Libc.LoopInfo64>(nameof(Libc.LoopInfo64.Inode)), Is.EqualTo(c["loop_info64.lo_inode"]));
            Assert.That((long)Marshal.OffsetOf<Libc.LoopInfo64>(nameof(Libc.LoopInfo64.Flags)), Is.EqualTo(c["loop_info64.lo_flags"]));
            Assert.That((long)Marshal.OffsetOf<Libc.LoopInfo64>(nameof(Libc.LoopInfo64.FileName)), Is.EqualTo(c["loop_info64.lo_file_name"]));
            Assert.That((long)Marshal.OffsetOf<Libc.LoopInfo64>(nameof(Libc.LoopInfo64.Init)), Is.EqualTo(c["loop_info64.lo_init"]));
            Assert.That(Marshal.SizeOf<Libc.LoopConfig>(), Is.EqualTo(c["sizeof(loop_config)"]));
            Assert.That((long)Marshal.OffsetOf<Libc.LoopConfig>(nameof(Libc.LoopConfig.BlockSize)), Is.EqualTo(c["loop_config.block_size"]));
            Assert.That((long)Marshal.OffsetOf<Libc.LoopConfig>(nameof(Libc.LoopConfig.Info)), Is.EqualTo(c["loop_config.info"]));
            Assert.That(c["LOOP_CONFIGURE"], Is.EqualTo(0x4C0A));
            Assert.That(c["LOOP_GET_STATUS64"], Is.EqualTo(0x4C05));
            Assert.That(c["LOOP_CTL_GET_FREE"], Is.EqualTo(0x4C82));
            Assert.That(c["LO_FLAGS_AUTOCLEAR"], Is.EqualTo(Libc.LO_FLAGS_AUTOCLEAR));
            Assert.That(c["LO_FLAGS_DIRECT_IO"], Is.EqualTo(Libc.LO_FLAGS_DIRECT_IO));
        });
    }

    [Test]
    public void An_attached_file_names_its_backing_file_and_detaches_at_the_last_close()
    {
        var image = Path.Combine(_dir, "disk.img");
        using (var file = File.Create(image))
        {
            file.SetLength(16 << 20);
        }

        using var backing = File.OpenHandle(image, FileMode.Open, FileAccess.ReadWrite);
        var device = Libc.AttachLoop(backing, 4096, out var path);
        try
        {
            Assert.That(Libc.LoopDevicesBackedBy(image), Is.EqualTo(new[] { path }));
            var minor = uint.Parse(path["/dev/loop".Length..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.That(Libc.TryLoopBacking(Libc.MakeDevice(Libc.LoopMajor, minor), out var dev, out var ino), Is.True);
            Assert.That(Libc.TryIdentity((int)backing.DangerousGetHandle(), out var fileDev, out var fileIno), Is.True);
            Assert.That((dev, ino), Is.EqualTo((fileDev, fileIno)), "LOOP_GET_STATUS64 names the file by device and inode");
            Assert.That(Libc.SplitDevice(Libc.MakeDevice(7, 300)), Is.EqualTo((7u, 300u)));
        }
        finally
        {
            device.Dispose();
        }

        // Autoclear: the release of the last opener detaches it (the kernel may finish a moment later).
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Libc.LoopDevicesBackedBy(image).Count > 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(20);
        }

        Assert.That(Libc.LoopDevicesBackedBy(image), Is.Empty);
    }
}
