namespace Hive.SbxFuse.Tests;

/// <summary>The backing directory handed over as a descriptor (as Sbxd does), pinned to the identity it was created with.</summary>
[CancelAfter(120_000)]
public sealed class RootDescriptorTests
{
    [Test]
    public async Task A_root_served_by_descriptor_stays_that_directory_when_its_path_is_swapped()
    {
        await using var fs = await SbxFuseProcess.StartAsync(prepare: source => File.WriteAllText(Path.Combine(source, "mine.txt"), "mine"), byDescriptor: true, pinIdentity: true);

        // The path now leads elsewhere (a symlink to the host's /etc); the mount still serves the directory it was given.
        Directory.Move(fs.Source, fs.Source + ".moved");
        Directory.CreateSymbolicLink(fs.Source, "/etc");
        try
        {
            Assert.That(await File.ReadAllTextAsync(fs.M("mine.txt")), Is.EqualTo("mine"));
            Assert.That(File.Exists(fs.M("passwd")), Is.False);
            await File.WriteAllTextAsync(fs.M("new.txt"), "x");
            Assert.That(File.Exists(Path.Combine(fs.Source + ".moved", "new.txt")), Is.True);
        }
        finally
        {
            File.Delete(fs.Source);
            Directory.Move(fs.Source + ".moved", fs.Source);
        }
    }

    [Test]
    public async Task A_root_that_is_not_the_recorded_directory_is_not_served()
    {
        await using var fs = await SbxFuseProcess.StartAsync(extraArgs: ["--source-id", "1:1"], byDescriptor: true, waitForMount: false);
        Assert.That(await fs.ExitCodeAsync(), Is.EqualTo(3));
        Assert.That(fs.Stderr, Does.Contain("refusing to serve").And.Contain("expected 1:1"));
        Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain(fs.Target));
    }
}
