using System.Text.Json;

namespace Hive.Attack.Tests.Fs;

/// <summary>
/// Planting something on the host through a workspace (privileged extended attributes, set-ID
/// bits, device nodes), and making the host do unbounded work for it (hashing a huge file).
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class NodeAttackTests
{
    [TestCase("security.selinux", "EOPNOTSUPP", true, TestName = "Security_labels_cannot_be_set")]
    [TestCase("trusted.overlay.redirect", "EPERM", false, TestName = "Trusted_extended_attributes_cannot_be_set")]
    [Defence("only user.* extended attributes exist in a workspace; the rest are refused (by SbxFuse, or by the kernel for lack of CAP_SYS_ADMIN)")]
    public async Task Privileged_extended_attributes_are_refused(string name, string expected, bool decidedBySbxFuse)
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + $$"""
            open('/w/xattr-target', 'w').write('x')
            print(attempt(lambda: os.setxattr('/w/xattr-target', '{{name}}', b'\x01\x00\x00\x02' + b'\x00' * 16)))
            print(attempt(lambda: os.setxattr('/w/xattr-target', 'user.note', b'fine')))
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { expected == "EOPNOTSUPP" ? "ENOTSUP" : expected, "OK" }));
        if (decidedBySbxFuse)
        {
            var events = await FsSandboxes.Controller.WaitForEventsAsync(sandbox, list => list.Any(e => e.GetProperty("target").GetString() == name), kind: "fs.setxattr", decision: "deny");
            Assert.That(events.Any(e => e.GetProperty("target").GetString() == name && e.GetProperty("errno").GetInt32() == 95), Is.True, "the refusal is recorded");
        }
    }

    [Test]
    [Defence("no CAP_SETFCAP (the kernel refuses first); behind it, only user.* extended attributes exist in a workspace (SbxFuse, recorded)")]
    public async Task File_capabilities_cannot_be_planted()
    {
        // VFS_CAP_REVISION_2 granting cap_sys_admin. The sandbox has no CAP_SETFCAP, so the kernel refuses
        // before the workspace sees it; a host process with the capability in the sandbox's mount
        // namespace stands for a sandbox that got past that, and meets SbxFuse's refusal.
        var sandbox = await FsSandboxes.AclSandboxAsync();
        const string Script = """
            open('/w/xattr-target', 'a').write('x')
            print(attempt(lambda: os.setxattr('/w/xattr-target', 'security.capability', b'\x01\x00\x00\x02' + b'\x00' * 16)))
            """;
        Assert.That(await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + Script), Is.EqualTo("EPERM"), "from inside (no CAP_SETFCAP)");
        Assert.That(await AsHostRootInsideAsync(sandbox, FsSandboxes.Prelude + Script), Is.EqualTo("ENOTSUP"), "with CAP_SETFCAP, in the sandbox's mount namespace");
        var events = await FsSandboxes.Controller.WaitForEventsAsync(sandbox, list => list.Any(e => e.GetProperty("target").GetString() == "security.capability"), kind: "fs.setxattr", decision: "deny");
        Assert.That(events.Any(e => e.GetProperty("target").GetString() == "security.capability" && e.GetProperty("errno").GetInt32() == 95), Is.True, "SbxFuse's refusal is recorded");
    }

    [Test]
    [Defence("set-user-ID and set-group-ID bits are never stored in a workspace")]
    public async Task Set_uid_bits_cannot_be_planted()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var outcome = await FsSandboxes.PythonAsync(sandbox, FsSandboxes.Prelude + """
            import shutil
            shutil.copy('/bin/sh', '/w/rootshell')
            os.chmod('/w/rootshell', 0o6755)
            print(oct(os.stat('/w/rootshell').st_mode & 0o7777))
            fd = os.open('/w/made-setuid', os.O_WRONLY | os.O_CREAT, 0o4755)
            os.close(fd)
            print(oct(os.stat('/w/made-setuid').st_mode & 0o7777))
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "0o755", "0o755" }));
        var backing = FsSandboxes.Backing(sandbox, "/w");
        foreach (var file in new[] { "rootshell", "made-setuid" })
        {
            Assert.That(File.GetUnixFileMode(Path.Combine(backing, file)) & (UnixFileMode.SetUser | UnixFileMode.SetGroup), Is.EqualTo((UnixFileMode)0), file + " on the host");
        }
    }

    [TestCase("character device", "mknod /w/nul c 1 3", "/w/nul")]
    [TestCase("fifo", "mkfifo /w/pipe", "/w/pipe")]
    [TestCase("socket", "python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('/w/sock')\"", "/w/sock")]
    [Defence("SbxFuse makes no device nodes, FIFOs or sockets in a workspace (EPERM, recorded); a device node is refused by the kernel first (no CAP_MKNOD; user namespace)")]
    public async Task Device_nodes_cannot_be_made_in_a_workspace(string type, string command, string path)
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        var (exit, _, stderr) = await FsSandboxes.ShAsync(sandbox, command);
        Assert.That(exit, Is.Not.Zero);
        Assert.That(stderr, Does.Contain("Operation not permitted"));
        if (type == "character device")
        {
            // The sandbox has no CAP_MKNOD: the kernel refused before the workspace saw the request. A host
            // process with the capability in the sandbox's mount namespace meets SbxFuse's refusal.
            var behind = await AsHostRootInsideAsync(sandbox, FsSandboxes.Prelude + "print(attempt(lambda: os.mknod('/w/nul', 0o020666, os.makedev(1, 3))))");
            Assert.That(behind, Is.EqualTo("EPERM"), "with CAP_MKNOD, in the sandbox's mount namespace");
        }

        Assert.That(Directory.GetFileSystemEntries(FsSandboxes.Backing(sandbox, "/w")).Select(Path.GetFileName), Does.Not.Contain(Path.GetFileName(path)));
        var events = await FsSandboxes.Controller.WaitForEventsAsync(sandbox, list => list.Any(e => e.GetProperty("path").GetString() == path), kind: "fs.mknod", decision: "deny");
        Assert.That(events.Any(e => e.GetProperty("path").GetString() == path && e.GetProperty("errno").GetInt32() == 1 && e.GetProperty("target").GetString() == type), Is.True, "recorded as a refused mknod");
    }

    [Test]
    [Defence("artifact hashing is capped: a file over 64 MiB is recorded without being read")]
    public async Task A_huge_sparse_file_costs_the_host_no_hashing()
    {
        var sandbox = await FsSandboxes.AclSandboxAsync();
        const long TwoTiB = 2L << 40;
        var (exit, stdout, stderr) = await FsSandboxes.ShAsync(sandbox, $"truncate -s {TwoTiB} /w/big && echo x >> /w/big && cat /w/cfg/app.yaml");
        Assert.That(exit, Is.Zero, stderr);
        Assert.That(stdout, Is.EqualTo("mode: safe\n"), "the mount answers right after");

        // truncate's close records the file at 2 TiB, the append's close at 2 TiB + 2 bytes.
        bool Big(JsonElement e) => e.GetProperty("path").GetString() == "/w/big" && e.GetProperty("size").GetInt64() == TwoTiB + 2;
        var events = await FsSandboxes.Controller.WaitForEventsAsync(sandbox, list => list.Any(Big), kind: "artifact.written");
        var artifact = events.Last(Big);
        Assert.That(artifact.GetProperty("size").GetInt64(), Is.EqualTo(TwoTiB + 2));
        Assert.That(artifact.GetProperty("sha256").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(artifact.GetProperty("hash_skipped").GetString(), Is.EqualTo("too large"));
    }

    /// <summary>A python script run by a host process with all of the host's capabilities, entered into the sandbox's mount namespace and root.</summary>
    private static async Task<string> AsHostRootInsideAsync(string sandbox, string script)
    {
        var pid = (await Kernel.KernelSandboxes.InitPidAsync(sandbox)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return await Kernel.KernelSandboxes.PythonAsHostRootInsideAsync(script, "nsenter", "--target", pid, "--mount", "--root", "--wd=/");
    }
}
