using System.Security.Cryptography;
using System.Text.Json;

namespace Hive.SbxFuse.Tests;

/// <summary>artifact.written within bounded host work: a size cap, a CPU budget, large files hashed off the request threads.</summary>
[CancelAfter(180_000)]
public sealed class ArtifactLimitTests
{
    private static JsonElement? ArtifactOf(List<JsonElement> audit, string path) =>
        audit.LastOrDefault(e => e.GetProperty("kind").GetString() == "artifact.written" && e.GetProperty("path").GetString() == path) is { ValueKind: JsonValueKind.Object } e ? e : null;

    [Test]
    public async Task A_huge_sparse_file_is_recorded_without_reading_it()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        const long TwoTiB = 2L << 40;
        var (code, output) = await GovernedMountTests.RunAsync("/bin/sh", "-c", $"truncate -s {TwoTiB} {fs.M("big")} && echo x >> {fs.M("big")} && echo small > {fs.M("small")} && echo done");
        Assert.That(code, Is.Zero, output);

        // truncate's close records it at 2 TiB, the append's close at 2 TiB + 2 bytes. Both releases reach
        // SbxFuse asynchronously and may be served by two threads at once, so the two records can come
        // in either order: look for the append's by its size.
        static JsonElement? Appended(List<JsonElement> audit) =>
            audit.FirstOrDefault(e => e.GetProperty("kind").GetString() == "artifact.written" && e.GetProperty("path").GetString() == "/workspace/big"
                && e.GetProperty("size").GetInt64() == TwoTiB + 2) is { ValueKind: JsonValueKind.Object } e ? e : null;
        var audit = await fs.WaitForAuditAsync(a => Appended(a) is not null && ArtifactOf(a, "/workspace/small") is not null);
        var big = Appended(audit);
        Assert.That(big, Is.Not.Null, "recorded");
        Assert.That(big!.Value.GetProperty("size").GetInt64(), Is.EqualTo(TwoTiB + 2));
        Assert.That(big.Value.GetProperty("sha256").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(big.Value.GetProperty("hash_skipped").GetString(), Is.EqualTo("too large"));
        Assert.That(ArtifactOf(audit, "/workspace/small")!.Value.GetProperty("sha256").GetString(), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData("small\n"u8))));
    }

    [Test]
    public async Task A_large_file_is_hashed_in_the_background_and_follows_an_atomic_save()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        var data = new byte[8 << 20];
        new Random(7).NextBytes(data);
        await File.WriteAllBytesAsync(Path.Combine(fs.Root, "payload"), data);
        var (code, output) = await GovernedMountTests.RunAsync("/bin/sh", "-c", $"cp {Path.Combine(fs.Root, "payload")} {fs.M(".save.tmp")} && mv {fs.M(".save.tmp")} {fs.M("saved.bin")} && echo done");
        Assert.That(code, Is.Zero, output);

        var audit = await fs.WaitForAuditAsync(a => ArtifactOf(a, "/workspace/saved.bin") is not null);
        var expected = Convert.ToHexStringLower(SHA256.HashData(data));
        Assert.That(ArtifactOf(audit, "/workspace/saved.bin")?.GetProperty("sha256").GetString(), Is.EqualTo(expected), "the final name of an atomic save gets the artifact");

        // The kernel releases a closed file asynchronously: if the rename came first, it was only ever saved.bin.
        if (ArtifactOf(audit, "/workspace/.save.tmp") is { } temporary)
        {
            Assert.That(temporary.GetProperty("sha256").GetString(), Is.EqualTo(expected));
        }
        Assert.That(ArtifactOf(audit, "/workspace/saved.bin")?.TryGetProperty("hash_skipped", out _), Is.False);
    }

    [TestCase("--hash-max-bytes", "4194304", "too large")]
    [TestCase("--hash-max-cpu-ms", "1", "cpu limit")]
    public async Task A_hash_beyond_its_limits_is_recorded_as_skipped(string option, string value, string reason)
    {
        await using var fs = await SbxFuseProcess.StartAsync(extraArgs: [option, value]);
        var (code, output) = await GovernedMountTests.RunAsync("/bin/sh", "-c", $"head -c 33554432 /dev/urandom > {fs.M("blob")} && echo done");
        Assert.That(code, Is.Zero, output);

        var audit = await fs.WaitForAuditAsync(a => ArtifactOf(a, "/workspace/blob") is not null);
        var artifact = ArtifactOf(audit, "/workspace/blob");
        Assert.That(artifact, Is.Not.Null);
        Assert.That(artifact!.Value.GetProperty("sha256").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(artifact.Value.GetProperty("hash_skipped").GetString(), Is.EqualTo(reason));
    }
}
