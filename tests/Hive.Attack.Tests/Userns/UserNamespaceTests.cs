namespace Hive.Attack.Tests.Userns;

/// <summary>
/// Root in a sandbox is nobody on the host: each sandbox runs in a user namespace of its own whose
/// 65,536 ids are a range of host ids no one else has. These attempts are what a sandbox's root
/// (or something that got out of its namespaces) would try with the ids it has.
/// </summary>
[TestFixture]
[CancelAfter(300_000)]
[Category(From.Inside)]
public sealed class UserNamespaceTests
{
    private const uint RangeSize = 65536;

    [Test]
    [Defence("user namespace: the sandbox's ids are its own range of host ids, not the host's")]
    public async Task The_id_maps_are_the_sandboxs_own_range_not_the_identity()
    {
        var maps = await UsernsSandboxes.ShAsync(UsernsSandboxes.First, "cat /proc/self/uid_map /proc/self/gid_map; id -u");
        var lines = maps.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(lines, Is.EqualTo(new[] { $"0 {UsernsSandboxes.FirstBase} {RangeSize}", $"0 {UsernsSandboxes.FirstBase} {RangeSize}", "0" }), "root inside is host id uid_base, and only 65,536 ids exist");
            Assert.That(lines[0], Is.Not.EqualTo("0 0 4294967295"), "not the host's identity map");
            Assert.That(UsernsSandboxes.FirstBase, Is.GreaterThanOrEqualTo(RangeSize), "above every 16-bit id the host's own users have");
        });
    }

    [Test]
    [Defence("id leases: one 65,536-id range per sandbox, never shared")]
    public async Task Two_sandboxes_have_id_ranges_that_do_not_overlap()
    {
        var first = (await UsernsSandboxes.ShAsync(UsernsSandboxes.First, "cat /proc/self/uid_map")).Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var second = (await UsernsSandboxes.ShAsync(UsernsSandboxes.Second, "cat /proc/self/uid_map")).Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var (a, b) = (ulong.Parse(first[1], System.Globalization.CultureInfo.InvariantCulture), ulong.Parse(second[1], System.Globalization.CultureInfo.InvariantCulture));
        var (sizeA, sizeB) = (ulong.Parse(first[2], System.Globalization.CultureInfo.InvariantCulture), ulong.Parse(second[2], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Multiple(() =>
        {
            Assert.That((a, b), Is.EqualTo(((ulong)UsernsSandboxes.FirstBase, (ulong)UsernsSandboxes.SecondBase)), "the ranges the responses name");
            Assert.That(a + sizeA <= b || b + sizeB <= a, Is.True, $"[{a}, {a + sizeA}) and [{b}, {b + sizeB}) share no id");
        });
    }

    [Test]
    [Defence("user namespace: a process that gets out of the namespaces is the range's root, an unprivileged user on the host")]
    public async Task A_process_that_escapes_into_the_host_is_an_unprivileged_user_there()
    {
        // The escape is simulated: a host process enters the sandbox's user namespace (and nothing
        // else), as code that broke out of the container's other namespaces would still be in it.
        var secret = Path.Combine(Path.GetTempPath(), $"hive-userns-secret-{Guid.NewGuid():N}");
        var target = Path.Combine(Path.GetTempPath(), $"hive-userns-target-{Guid.NewGuid():N}");
        var made = Path.Combine(Path.GetTempPath(), $"hive-userns-made-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(secret, "root only\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await File.WriteAllTextAsync(target, "root's\n");
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        try
        {
            var pid = UsernsSandboxes.ContainerPid(UsernsSandboxes.First).ToString(System.Globalization.CultureInfo.InvariantCulture);
            string[] enter = ["--user", "--target", pid, "--"];
            var read = await Host.RunAsync("nsenter", [.. enter, "cat", secret]);
            var write = await Host.RunAsync("nsenter", [.. enter, "/bin/sh", "-c", "echo changed >> \"$0\"", target]);
            var shadow = await Host.RunAsync("nsenter", [.. enter, "cat", "/etc/shadow"]);
            var create = await Host.RunAsync("nsenter", [.. enter, "touch", made]);
            Assert.Multiple(async () =>
            {
                Assert.That((read.ExitCode, read.Stderr), Is.EqualTo((1, $"cat: {secret}: Permission denied\n")), "a 0600 file of the host's root");
                Assert.That(write.ExitCode, Is.Not.Zero);
                Assert.That(write.Stderr, Does.Contain("Permission denied"), "a 0644 file of the host's root");
                Assert.That((shadow.ExitCode, shadow.Stderr), Is.EqualTo((1, "cat: /etc/shadow: Permission denied\n")));
                Assert.That(await File.ReadAllTextAsync(target), Is.EqualTo("root's\n"));
                Assert.That(create.ExitCode, Is.Zero, create.Stderr);
                Assert.That((await UsernsSandboxes.StatOnHostAsync(made)).Uid, Is.EqualTo(UsernsSandboxes.FirstBase), "what it makes on the host is the range's root's, not root's");
            });
        }
        finally
        {
            File.Delete(secret);
            File.Delete(target);
            File.Delete(made);
        }
    }

    [Test]
    [Defence("user namespace: what the sandbox creates belongs to its range on the host")]
    public async Task Files_the_sandbox_creates_belong_to_its_range_on_the_host()
    {
        var (code, _, stderr) = await UsernsSandboxes.ShAsync(UsernsSandboxes.First,
            "echo r > /tmp/by-root && mkdir -p /srv/app && setpriv --reuid 1000 --regid 1000 --clear-groups sh -c 'echo u > /tmp/by-user'");
        Assert.That(code, Is.Zero, stderr);
        var rootfs = UsernsSandboxes.HostRootfs(UsernsSandboxes.First);
        var byRoot = await UsernsSandboxes.StatOnHostAsync(Path.Combine(rootfs, "tmp/by-root"));
        var dir = await UsernsSandboxes.StatOnHostAsync(Path.Combine(rootfs, "srv/app"));
        var byUser = await UsernsSandboxes.StatOnHostAsync(Path.Combine(rootfs, "tmp/by-user"));
        var top = await UsernsSandboxes.StatOnHostAsync(rootfs);
        var b = UsernsSandboxes.FirstBase;
        Assert.Multiple(() =>
        {
            Assert.That((byRoot.Uid, byRoot.Gid), Is.EqualTo((b, b)), "the sandbox's root is host id uid_base");
            Assert.That((dir.Uid, dir.Gid), Is.EqualTo((b, b)));
            Assert.That((byUser.Uid, byUser.Gid), Is.EqualTo((b + 1000, b + 1000)), "its uid 1000 is host id uid_base + 1000");
            Assert.That((top.Uid, top.Gid), Is.EqualTo((b, b)), "its / (the upper layer's root) too");
            Assert.That(b, Is.Not.Zero);
        });
    }

    [Test]
    [Defence("user namespace: a set-uid root binary the sandbox makes is set-uid to the range's root, nobody on the host")]
    public async Task A_set_uid_root_binary_made_inside_gives_no_root_on_the_host()
    {
        var (code, _, stderr) = await UsernsSandboxes.ShAsync(UsernsSandboxes.First,
            "cp /usr/bin/id /tmp/suid-id && cp /bin/cat /tmp/suid-cat && chmod 4755 /tmp/suid-id /tmp/suid-cat");
        Assert.That(code, Is.Zero, stderr);
        var rootfs = UsernsSandboxes.HostRootfs(UsernsSandboxes.First);
        var id = await UsernsSandboxes.StatOnHostAsync(Path.Combine(rootfs, "tmp/suid-id"));
        Assert.That((id.Uid, id.Mode), Is.EqualTo((UsernsSandboxes.FirstBase, "4755")), "set-uid, and owned by the range's root on the host");

        // An unprivileged host user runs both from the host's own mount of the sandbox's root (set-uid
        // counts there: the overlay is mounted without nosuid). Reached through descriptors the test
        // opened as root, since that user cannot pass the directories above them.
        var secret = Path.Combine(Path.GetTempPath(), $"hive-userns-secret-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(secret, "root only\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        try
        {
            var run = await Host.RunAsync("/bin/bash", "-c",
                "exec 8<\"$1\" 9<\"$2\"; exec setpriv --reuid 65534 --regid 65534 --clear-groups /bin/sh -c '/proc/self/fd/8 -u; /proc/self/fd/9 \"$0\"' \"$3\"",
                "bash", Path.Combine(rootfs, "tmp/suid-id"), Path.Combine(rootfs, "tmp/suid-cat"), secret);
            Assert.Multiple(() =>
            {
                Assert.That(run.Stdout, Is.EqualTo($"{UsernsSandboxes.FirstBase}\n"), "the binary's set-uid took effect: its effective uid is the range's root, not 0");
                Assert.That(run.Stderr, Does.Contain("Permission denied"), "and that cannot read a file of the host's root");
                Assert.That(run.Stdout, Does.Not.Contain("root only"));
            });
        }
        finally
        {
            File.Delete(secret);
        }
    }

    // A map is written once (then EPERM for anyone); setgroups may only be opened for writing with
    // CAP_SYS_ADMIN in the namespace (EACCES), and once gid_map is written it is fixed anyway.
    [TestCase("uid_map", "0 0 4294967295", "EPERM")]
    [TestCase("gid_map", "0 0 4294967295", "EPERM")]
    [TestCase("setgroups", "deny", "EACCES")]
    [Defence("user namespace: its maps are written once, by Sbxd, from the host; the sandbox holds no capability in the host's namespace")]
    public async Task Writing_the_id_maps_or_setgroups_from_inside_is_refused(string file, string content, string refusal)
    {
        var outcome = await UsernsSandboxes.PythonAsync(UsernsSandboxes.First, $"""
            print(try_write('/proc/self/{file}', '{content}\n'))
            print(open('/proc/self/uid_map').read().split())
            """);
        var lines = outcome.Split('\n');
        Assert.Multiple(() =>
        {
            Assert.That(lines[0], Is.EqualTo(refusal), file);
            Assert.That(lines[1], Is.EqualTo($"['0', '{UsernsSandboxes.FirstBase}', '{RangeSize}']"), "the map is still the sandbox's range");
        });
    }

    [Test]
    [Defence("seccomp refuses a new user namespace (and the sandbox's namespace allows none inside it: max_user_namespaces 0)")]
    public async Task A_user_namespace_cannot_be_made_inside()
    {
        var outcome = await UsernsSandboxes.PythonAsync(UsernsSandboxes.First, """
            print(sc(272, 0x10000000))
            print(sc(56, 0x10000000 | 17, 0, 0, 0, 0))
            print(open('/proc/sys/user/max_user_namespaces').read().strip())
            print(try_write('/proc/sys/user/max_user_namespaces', '100'))
            """);
        Assert.That(outcome.Split('\n'), Is.EqualTo(new[] { "EPERM", "EPERM", "0", "EROFS" }), "unshare, clone, the limit, raising it");
    }

    [Test]
    [Defence("user namespace: the host's device nodes (bound in) are not the sandbox root's to change")]
    public async Task The_hosts_device_nodes_cannot_be_changed_from_inside()
    {
        var host = await Host.RunAsync("stat", "-c", "%d:%i %a", "/dev/null");
        Assert.That(host.ExitCode, Is.Zero, host.Stderr);
        var outcome = await UsernsSandboxes.PythonAsync(UsernsSandboxes.First, """
            st = os.stat('/dev/null')
            print(f"{st.st_dev}:{st.st_ino}")
            def attempt(f):
                try:
                    f()
                    return "OK"
                except OSError as e:
                    return name(e)
            print(attempt(lambda: os.chmod('/dev/null', 0o600)))
            print(attempt(lambda: os.chown('/dev/null', 0, 0)))
            print(attempt(lambda: os.chmod('/dev/zero', 0o600)))
            """);
        var lines = outcome.Split('\n');
        var after = await Host.RunAsync("stat", "-c", "%d:%i %a", "/dev/null");
        Assert.Multiple(() =>
        {
            Assert.That(lines[0] + " 666", Is.EqualTo(host.Stdout.Trim()), "the sandbox's /dev/null is the host's node");
            Assert.That(lines[1..], Is.EqualTo(new[] { "EPERM", "EPERM", "EPERM" }), "chmod, chown, chmod");
            Assert.That(after.Stdout.Trim(), Is.EqualTo(host.Stdout.Trim()), "unchanged on the host");
        });
    }

    [Test]
    [Defence("idmapped lower layer: the image is one shared read-only copy, the sandbox's root's only in its own view")]
    public async Task The_shared_image_is_the_sandboxs_to_read_not_to_change()
    {
        var image = Path.Combine(Paths.ImageDir, "base", "rootfs", "etc", "debian_version");
        var before = await File.ReadAllTextAsync(image);
        var imageOwner = await UsernsSandboxes.StatOnHostAsync(image);
        var (code, stdout, stderr) = await UsernsSandboxes.ShAsync(UsernsSandboxes.First, "stat -c '%u:%g' /etc/debian_version /usr/bin && echo tampered >> /etc/debian_version");
        Assert.That(code, Is.Zero, stderr);
        var other = await UsernsSandboxes.ShAsync(UsernsSandboxes.Second, "cat /etc/debian_version");
        Assert.Multiple(async () =>
        {
            Assert.That(stdout, Is.EqualTo("0:0\n0:0\n"), "the image's files are the sandbox's root's in its view (idmapped)");
            Assert.That((imageOwner.Uid, imageOwner.Gid), Is.EqualTo((0u, 0u)), "and still the host's root's on disk: not copied, not chowned");
            Assert.That(await File.ReadAllTextAsync(image), Is.EqualTo(before), "the change went to the sandbox's upper layer");
            Assert.That(other.Stdout, Is.EqualTo(before), "another sandbox of the same image sees the image");
        });
    }
}
