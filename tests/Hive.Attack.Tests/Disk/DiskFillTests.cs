namespace Hive.Attack.Tests.Disk;

/// <summary>
/// Filling the host's disk or inode table from inside a sandbox: through its own files (the writable
/// layer, /tmp included), its workspace, /dev/shm and /dev. Each stops at the sandbox's own limit
/// with ENOSPC, the host file backing it never grows beyond that limit, and the sandbox keeps working.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
[Category(From.Inside)]
public sealed class DiskFillTests : DiskFixture
{
    private const string NoSpace = "No space left on device";

    private static readonly object[] FillAttempts =
    [
        new object[] { "fallocate", "fallocate -l 80m /root/fill", NoSpace },
        new object[] { "dd into /tmp", "dd if=/dev/zero of=/tmp/fill bs=1M count=100", NoSpace },
        new object[] { "writes at the far end of a sparse file", "truncate -s 1T /var/tmp/fill && dd if=/dev/zero of=/var/tmp/fill bs=1M count=100 seek=900000 conv=notrunc", NoSpace },
        new object[] { "many 64 KiB files", "mkdir /tmp/many && i=0; while head -c 65536 /dev/zero > /tmp/many/$i; do i=$((i+1)); [ $i -gt 5000 ] && break; done", NoSpace },
        new object[] { "page faults on a mapped sparse file", "python3 -c \"import mmap, os\nfd = os.open('/root/fill', os.O_RDWR | os.O_CREAT)\nos.ftruncate(fd, 100 << 20)\nm = mmap.mmap(fd, 100 << 20)\nfor off in range(0, 100 << 20, 4096): m[off] = 1\nprint('all written')\"; echo \"exit $?\"", "exit 135" },
    ];

    [TestCaseSource(nameof(FillAttempts))]
    [Defence("the writable layer is an ext4 file system of its own, `disk` bytes (a loop-mounted sparse image)")]
    public async Task Filling_the_writable_layer_stops_at_the_disk(string how, string command, string expected)
    {
        var (exit, stdout, stderr) = await ShAsync(command);
        Assert.That(stdout + stderr, Does.Contain(expected), $"{how}: exit {exit}");
        Assert.That(stdout, Does.Not.Contain("all written"));
        Assert.That(await AllocatedAsync(DiskImage), Is.LessThanOrEqualTo(DiskBytes), "the host holds no more than the disk for it");

        var df = await ShAsync("df -B1 --output=size / | tail -1");
        Assert.That(long.Parse(df.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture), Is.LessThanOrEqualTo(DiskBytes), "df inside shows the sandbox's own disk");

        await CleanUpAsync();
        await AssertStillWorksAsync();
    }

    private static readonly object[] InodeAttempts =
    [
        new object[] { "empty files", "open(str(n), 'w').close()" },
        new object[] { "directories", "os.mkdir(str(n))" },
        new object[] { "symbolic links", "os.symlink('/etc/passwd', str(n))" },
        new object[] { "FIFOs", "os.mkfifo(str(n))" },
    ];

    [TestCaseSource(nameof(InodeAttempts))]
    [Defence("the inode count of the sandbox's own file system: 64 Ki per GiB of `disk` (4,096 for 64 MiB)")]
    public async Task Creating_a_million_entries_stops_at_the_inode_limit(string how, string create)
    {
        var result = await PythonAsync($$"""
            import errno, os
            os.makedirs('/tmp/many'); os.chdir('/tmp/many')
            n = 0
            try:
                while n < 1_000_000:
                    {{create}}
                    n += 1
                print(n, 'OK')
            except OSError as e:
                print(n, errno.errorcode[e.errno])
            """);
        var parts = result.Split(' ');
        Assert.That(parts[1], Is.EqualTo("ENOSPC"), $"{how}: {result}");
        Assert.That(int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), Is.InRange(3000, 4096), $"{how}: stopped at the inode limit");
        var df = await ShAsync("df --output=itotal / | tail -1");
        Assert.That(df.Stdout.Trim(), Is.EqualTo("4096"));

        await CleanUpAsync();
        await AssertStillWorksAsync();
    }

    [TestCase("/dev/shm", 64L << 20)]
    [TestCase("/dev", 1L << 20)]
    [Defence("tmpfs limits: /dev/shm min(memory/2, 64 MiB), /dev 1 MiB and 1,024 inodes")]
    public async Task Filling_a_memory_file_system_stops_at_its_size(string directory, long size)
    {
        var (_, stdout, stderr) = await ShAsync($"dd if=/dev/zero of={directory}/fill bs=64k count=4096; stat -c %s {directory}/fill");
        Assert.That(stderr, Does.Contain(NoSpace));
        var written = long.Parse(stdout.Trim().Split('\n')[^1], System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(written, Is.LessThanOrEqualTo(size).And.GreaterThan(size / 2), $"{directory} is bounded");

        await CleanUpAsync();
        await AssertStillWorksAsync($"{directory}/after", size / 4);
    }

    private static readonly object[] WorkspaceAttempts =
    [
        new object[] { "dd", "dd if=/dev/zero of=/w/fill bs=1M count=64", "fs.write", "/w/fill" },
        new object[] { "fallocate", "fallocate -l 48m /w/fill", "fs.fallocate", "/w/fill" },
        new object[] { "empty files past the inode limit", "mkdir /w/fill && cd /w/fill && i=0; while true > $i; do i=$((i+1)); [ $i -gt 4000 ] && break; done; echo stopped at $i", "fs.create", null! },
    ];

    [TestCaseSource(nameof(WorkspaceAttempts))]
    [Defence("a local workspace is an ext4 file system of `quota` bytes (an image mounted on its directory); SbxFuse passes ENOSPC on and records it")]
    public async Task Filling_a_workspace_stops_at_its_quota_and_the_refusal_is_on_record(string how, string command, string kind, string? path)
    {
        var (_, stdout, stderr) = await ShAsync(command);
        Assert.That(stderr, Does.Contain(NoSpace), $"{how}: {stdout}");
        if (path is null)
        {
            Assert.That(stdout, Does.StartWith("stopped at "), stderr);
            var created = int.Parse(stdout.Trim().Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture);
            Assert.That(created, Is.InRange(1500, 2048), "stopped at the workspace's 2,048 inodes");
            path = "/w/fill/" + created.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        var refused = await FailedFsEventAsync(kind, path, 28);
        Assert.That(refused, Is.Not.Null, $"{kind} on {path} with errno 28 (ENOSPC) is on record");
        Assert.That(await AllocatedAsync(WorkspaceImage), Is.LessThanOrEqualTo(QuotaBytes), "the host holds no more than the quota for it");

        await CleanUpAsync();
        await AssertStillWorksAsync("/w/after");
    }

    [Test]
    [Defence("each sandbox's disk is a file system of its own; the host's file for it grows to `disk` at most")]
    public async Task A_full_sandbox_leaves_its_neighbour_and_the_host_untouched()
    {
        var neighbour = await NeighbourAsync();
        var (_, _, stderr) = await ShAsync("dd if=/dev/zero of=/root/fill bs=1M count=100");
        Assert.That(stderr, Does.Contain(NoSpace));
        Assert.That(await AllocatedAsync(DiskImage), Is.LessThanOrEqualTo(DiskBytes));

        // While this one is full: the neighbour writes as much as its own disk allows, and the host's
        // data directory keeps its free space (only the full disk's image grew, by at most 64 MiB).
        var (exit, stdout, nstderr) = await ShAsync("dd if=/dev/zero of=/root/mine bs=1M count=32 status=none && stat -c %s /root/mine && rm /root/mine", neighbour);
        Assert.That((exit, stdout), Is.EqualTo((0, (32L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n")), nstderr);
        var (_, free, _) = await Host.RunAsync("df", "-B1", "--output=avail", Controller.DataDir);
        Assert.That(long.Parse(free.Split('\n')[1].Trim(), System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(1L << 30), "the host's data directory still has room");

        await CleanUpAsync();
        await AssertStillWorksAsync();
    }

    [Test]
    [Defence("/sys/devices/virtual/block and /sys/fs/ext4 masked (read as empty)")]
    public async Task Loop_devices_name_no_host_path_inside()
    {
        // On the host, /sys/block/loopN/loop/backing_file names every sandbox's disk image.
        Assert.That(Directory.EnumerateDirectories("/sys/block", "loop*").Any(d => BackingFile(d).Contains(Controller.DataDir, StringComparison.Ordinal)), Is.True, "the host's sysfs does name them");

        var (_, stdout, stderr) = await ShAsync("cat /sys/block/loop*/loop/backing_file /sys/devices/virtual/block/*/loop/backing_file 2>&1; ls /sys/devices/virtual/block /sys/fs/ext4 2>&1; cat /sys/fs/ext4/*/session_write_kbytes 2>&1; true");
        Assert.That(stdout + stderr, Does.Not.Contain(Controller.DataDir).And.Not.Contain(".img").And.Not.Contain(Sandbox));
        var (_, listing, _) = await ShAsync("ls -A /sys/devices/virtual/block /sys/fs/ext4 | grep -v ':$' | grep -c . ; true");
        Assert.That(listing.Trim(), Is.EqualTo("0"), "both read as empty directories");
    }

    private static string BackingFile(string device)
    {
        try
        {
            return File.ReadAllText(Path.Combine(device, "loop", "backing_file"));
        }
        catch (IOException)
        {
            return string.Empty; // not bound (or unbound meanwhile)
        }
    }

    [Test]
    [Defence("devices cgroup: no block device opens inside, the sandbox's own disk included")]
    public async Task Opening_the_own_disk_as_a_block_device_to_grow_it_is_refused()
    {
        // /proc/partitions lists the host's loop devices; make a node for each and try to open it.
        var result = await PythonAsync("""
            import errno, os, stat
            outcomes = set()
            for line in open('/proc/partitions').read().split('\n')[2:]:
                f = line.split()
                if len(f) == 4 and f[3].startswith('loop'):
                    path = '/tmp/fill-' + f[3]
                    try:
                        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(int(f[0]), int(f[1])))
                        os.close(os.open(path, os.O_RDWR))
                        outcomes.add('OPENED')
                    except OSError as e:
                        outcomes.add(errno.errorcode[e.errno])
            print(' '.join(sorted(outcomes)))
            """);
        Assert.That(result, Is.EqualTo("EPERM"), "every loop device refused");
    }
}
