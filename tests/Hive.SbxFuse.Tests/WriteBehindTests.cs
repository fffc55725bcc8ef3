using System.Security.Cryptography;

namespace Hive.SbxFuse.Tests;

/// <summary>
/// Large writes are sent toward the disk while the agent is still writing (WriteBehind), without
/// the agent asking, and nothing about the data changes: what is stored and recorded is what was
/// written, also for handles closed while a send is under way.
/// </summary>
[CancelAfter(120_000)]
public sealed class WriteBehindTests
{
    /// <summary>Pages the kernel has finished writing to disk since boot (/proc/vmstat).</summary>
    private static long PagesWritten() =>
        long.Parse(File.ReadLines("/proc/vmstat").First(l => l.StartsWith("nr_written ", StringComparison.Ordinal))["nr_written ".Length..], System.Globalization.CultureInfo.InvariantCulture);

    [Test]
    public async Task A_large_file_reaches_the_disk_without_fsync_and_is_stored_as_written()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        var data = RandomNumberGenerator.GetBytes(48 << 20);

        // The kernel alone would keep these pages dirty for 30 s (vm.dirty_expire_centisecs) on
        // a machine this size; sent on by SbxFuse they are on disk within moments.
        var before = PagesWritten();
        await using (var file = new FileStream(fs.M("big.bin"), FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            for (var offset = 0; offset < data.Length; offset += 1 << 20)
            {
                file.Write(data, offset, 1 << 20);
            }
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        var written = 0L;
        while (DateTime.UtcNow < deadline && (written = (PagesWritten() - before) * 4096) < 40 << 20)
        {
            await Task.Delay(50);
        }

        Assert.That(written, Is.GreaterThanOrEqualTo(40 << 20), "at least 40 of the 48 MiB written back, no fsync asked");
        Assert.That(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(fs.Source, "big.bin"))), Is.EqualTo(SHA256.HashData(data)));
    }

    [Test]
    public async Task Handles_closed_right_after_large_writes_keep_every_byte()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        var data = RandomNumberGenerator.GetBytes(9 << 20);
        for (var i = 0; i < 12; i++)
        {
            // Write-only (direct) and read-write (through the page cache) handles alike.
            var access = i % 2 == 0 ? FileAccess.Write : FileAccess.ReadWrite;
            await using var file = new FileStream(fs.M($"f{i}.bin"), FileMode.CreateNew, access, FileShare.None, bufferSize: 0);
            for (var offset = 0; offset < data.Length; offset += 1 << 20)
            {
                file.Write(data, offset, Math.Min(1 << 20, data.Length - offset));
            }
        }

        var expected = Convert.ToHexStringLower(SHA256.HashData(data));
        for (var i = 0; i < 12; i++)
        {
            Assert.That(Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(Path.Combine(fs.Source, $"f{i}.bin")))), Is.EqualTo(expected), $"f{i}.bin");
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        var artifacts = new List<System.Text.Json.JsonElement>();
        while (DateTime.UtcNow < deadline && artifacts.Count < 12)
        {
            artifacts = (await fs.AuditAsync()).Where(e => e.GetProperty("kind").GetString() == "artifact.written").ToList();
            await Task.Delay(50);
        }

        Assert.That(artifacts, Has.Count.EqualTo(12));
        Assert.That(artifacts.Select(e => e.GetProperty("sha256").GetString()), Is.All.EqualTo(expected));
    }
}
