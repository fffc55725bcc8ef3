using System.Globalization;
using System.Runtime.InteropServices;
using Hive.Interop;
using Microsoft.Win32.SafeHandles;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// An ext4 file system in a sparse image file, loop-mounted: how a sandbox's writable layer and each
/// workspace with a quota get a size and an inode count that the kernel enforces — a write past
/// either fails with ENOSPC inside that file system, and nothing else on the host notices.
/// </summary>
/// <remarks>
/// Why this and not project quotas on one shared file system (measured on this kernel, see
/// docs/ARCHITECTURE.md "Disk quotas"): the kernel is built without the quota formats ext4 needs
/// (<c>CONFIG_QFMT_V2</c>) and without <c>CONFIG_XFS_QUOTA</c>, and the root file system's features
/// cannot be changed; a project id is also something the sandbox could change on its own files
/// through the overlay (<c>chattr -P</c>) while it shares the host's user namespace. A file system of
/// its own has no id to change and no reserved blocks to reach.
/// <code>
/// image (sparse file) ── LOOP_CONFIGURE (autoclear, direct I/O, 4 KiB blocks) ──► /dev/loopN ── mount ext4 ──► target
/// </code>
/// mke2fs writes ~230 KiB (no inode tables: lazy_itable_init, and the mount's noinit_itable keeps the
/// kernel from zeroing them later — a sparse file reads as zeros anyway); ~10 ms. Attach and mount
/// ~10 ms. Deleting files inside punches holes in the image (discard), so the host gets the space back.
/// </remarks>
internal static partial class DiskImage
{
    /// <summary>File system and loop block size: direct I/O on the backing file needs its alignment.</summary>
    public const uint BlockSize = 4096;

    /// <summary>The root directory's inode number in ext4 (EXT4_ROOT_INO).</summary>
    public const ulong RootInode = 2;

    /// <summary>
    /// noinit_itable: no background zeroing of inode tables (the image is sparse). discard: freed
    /// blocks are punched out of the image. errors=remount-ro: should the host's file system fail a
    /// write to the image (full), the sandbox's file system stops taking writes instead of continuing
    /// on a damaged one.
    /// </summary>
    private const string MountOptions = "noinit_itable,discard,errors=remount-ro";

    /// <summary>
    /// Creates <paramref name="image"/>: a sparse file of <paramref name="bytes"/> with an ext4 file
    /// system of <paramref name="inodes"/> inodes and no reserved blocks. Made under a temporary name
    /// and renamed, so a crash never leaves a half-made image under the real name.
    /// </summary>
    public static async Task CreateAsync(string image, ulong bytes, ulong inodes, CancellationToken cancellationToken)
    {
        var temp = image + ".new";
        File.Delete(temp);

        // CreateNew is O_CREAT|O_EXCL: a symlink planted under the name is not followed.
        using (var file = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            file.SetLength((long)bytes);
        }

        var mkfs = await Command.RunAsync(
            Tool("mke2fs"),
            [
                "-q", "-F", "-t", "ext4", "-b", BlockSize.ToString(CultureInfo.InvariantCulture), "-I", "256",
                "-N", inodes.ToString(CultureInfo.InvariantCulture), "-m", "0", "-O", "^resize_inode",
                "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", temp,
            ],
            cancellationToken);
        if (!mkfs.Ok)
        {
            File.Delete(temp);
            throw new InvalidOperationException(mkfs.Describe("mke2fs"));
        }

        File.Move(temp, image, overwrite: false);
    }

    /// <summary>
    /// Grows an image that is not mounted to <paramref name="bytes"/> (a workspace created again with a
    /// larger quota). Inodes grow in proportion: ext4 adds block groups of the same shape.
    /// </summary>
    public static async Task GrowAsync(string image, ulong bytes, CancellationToken cancellationToken)
    {
        var fsck = await Command.RunAsync(Tool("e2fsck"), ["-f", "-p", image], cancellationToken, TimeSpan.FromMinutes(10));
        if (fsck.ExitCode > 1)
        {
            throw new InvalidOperationException(fsck.Describe("e2fsck"));
        }

        using (var file = OpenImage(image))
        {
            RandomAccess.SetLength(file, (long)bytes);
        }

        var resize = await Command.RunAsync(Tool("resize2fs"), [image], cancellationToken, TimeSpan.FromMinutes(10));
        if (!resize.Ok)
        {
            throw new InvalidOperationException(resize.Describe("resize2fs"));
        }
    }

    /// <summary>
    /// Attaches <paramref name="image"/> to a loop device and mounts its file system at
    /// <paramref name="target"/> (a path, or <c>/proc/self/fd/N</c> of the directory). A file system that
    /// does not mount (a host crash in the middle of a write) is checked with <c>e2fsck -p</c> and
    /// mounted again once.
    /// </summary>
    /// <exception cref="InvalidOperationException">The image is attached already: one ext4 mounted twice would be destroyed.</exception>
    public static async Task MountAsync(string image, string target, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            // A device whose last mount just went (a lazy unmount, a restart) detaches a moment later.
            await WaitDetachedAsync(image, cancellationToken);
            if (Libc.LoopDevicesBackedBy(image) is { Count: > 0 } attached)
            {
                throw new InvalidOperationException($"{image} is still attached to {string.Join(", ", attached)} (in use since an earlier mount?); not mounted a second time");
            }

            int error;
            using (var backing = OpenImage(image))
            using (var device = Libc.AttachLoop(backing, BlockSize, out var devicePath))
            {
                // The mount holds the device open from here on; closing ours leaves it attached, and the
                // unmount (the last close) detaches it.
                if (Libc.mount(devicePath, target, "ext4", Libc.MS_NOSUID | Libc.MS_NODEV, MountOptions) == 0)
                {
                    return;
                }

                error = Marshal.GetLastPInvokeError();
            }

            if (attempt > 0 || error is not (Libc.EINVAL or EUCLEAN or Libc.EIO))
            {
                throw new SyscallException("mount(ext4)", error, image);
            }

            await WaitDetachedAsync(image, cancellationToken);
            var fsck = await Command.RunAsync(Tool("e2fsck"), ["-p", image], cancellationToken, TimeSpan.FromMinutes(10));
            if (fsck.ExitCode > 1)
            {
                throw new InvalidOperationException(fsck.Describe("e2fsck") + $" (after mount(ext4) of {image} failed with errno {error})");
            }
        }
    }

    /// <summary>
    /// The device number (<c>st_dev</c>) of the mounted file system that <paramref name="image"/> backs,
    /// checked through the loop device's own record of its file (device and inode); null if none.
    /// </summary>
    public static ulong? MountedDevice(string image)
    {
        if (!TryIdentity(image, out var imageDev, out var imageIno))
        {
            return null;
        }

        foreach (var device in Libc.LoopDevicesBackedBy(image))
        {
            var name = Path.GetFileName(device);
            string numbers;
            try
            {
                numbers = File.ReadAllText($"/sys/block/{name}/dev").Trim();
            }
            catch (IOException)
            {
                continue;
            }

            var parts = numbers.Split(':');
            if (parts.Length == 2 && uint.TryParse(parts[0], CultureInfo.InvariantCulture, out var major) && uint.TryParse(parts[1], CultureInfo.InvariantCulture, out var minor))
            {
                var dev = Libc.MakeDevice(major, minor);
                if (Libc.TryLoopBacking(dev, out var backingDev, out var backingIno) && backingDev == imageDev && backingIno == imageIno)
                {
                    return dev;
                }
            }
        }

        return null;
    }

    /// <summary>True when <paramref name="target"/> is the root of the file system in <paramref name="image"/>.</summary>
    public static bool IsMountedFrom(string target, string image)
    {
        var fd = Libc.openat2(Libc.AT_FDCWD, target, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, Libc.RESOLVE_NO_SYMLINKS);
        if (fd < 0)
        {
            return false;
        }

        try
        {
            return Libc.TryIdentity(fd, out var dev, out var ino) && ino == RootInode && MountedDevice(image) == dev;
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>
    /// Unmounts <paramref name="target"/> (lazily if busy; a failure goes to <paramref name="problems"/>)
    /// and waits for the loop device behind it to detach. False when it is still attached afterwards:
    /// something outside the sandbox holds the file system (a lazily detached mount in use), and the
    /// device detaches when that lets go.
    /// </summary>
    public static async Task<bool> UnmountAsync(string target, string image, List<string> problems, CancellationToken cancellationToken)
    {
        if (Libc.IsMountPoint(target) && Libc.umount2(target, 0) != 0 && Libc.umount2(target, Libc.MNT_DETACH) != 0)
        {
            problems.Add(SyscallException.FromLastError("umount2", target).Message);
            return false;
        }

        await WaitDetachedAsync(image, cancellationToken);
        return Libc.LoopDevicesBackedBy(image).Count == 0;
    }

    /// <summary>
    /// What the file system mounted at <paramref name="path"/> holds: bytes and inodes in use, and its
    /// inode count; null if nothing is mounted there (the directory is not an ext4 root) or it cannot be
    /// asked. Cheap enough for every status call: no mount table is read.
    /// </summary>
    public static (ulong UsedBytes, ulong UsedInodes, ulong Inodes)? Usage(string path)
    {
        var fd = Libc.openat2(Libc.AT_FDCWD, path, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, Libc.RESOLVE_NO_SYMLINKS);
        if (fd < 0)
        {
            return null;
        }

        try
        {
            if (!Libc.TryIdentity(fd, out _, out var inode) || inode != RootInode || !Libc.TryStatVfs(fd, out var stat))
            {
                return null;
            }

            // f_blocks leaves out ext4's own metadata (journal, inode tables): used is the sandbox's data.
            return ((stat.Blocks - stat.Bfree) * stat.Frsize, stat.Files - stat.Ffree, stat.Files);
        }
        finally
        {
            Libc.close(fd);
        }
    }

    private static async Task WaitDetachedAsync(string image, CancellationToken cancellationToken)
    {
        // The last close detaches the device in the kernel's own time (a work item): moments, not seconds.
        for (var i = 0; i < 250 && Libc.LoopDevicesBackedBy(image).Count > 0; i++)
        {
            await Task.Delay(20, cancellationToken);
        }
    }

    private static SafeFileHandle OpenImage(string image)
    {
        var fd = Libc.openat(Libc.AT_FDCWD, image, Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true) : throw SyscallException.FromLastError("open", image);
    }

    private static bool TryIdentity(string path, out ulong device, out ulong inode)
    {
        device = 0;
        inode = 0;
        var fd = Libc.openat2(Libc.AT_FDCWD, path, Libc.O_PATH | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0, Libc.RESOLVE_NO_SYMLINKS);
        if (fd < 0)
        {
            return false;
        }

        try
        {
            return Libc.TryIdentity(fd, out device, out inode);
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>e2fsprogs live in /usr/sbin or /sbin, which a service's PATH may lack.</summary>
    private static string Tool(string name) =>
        new[] { "/usr/sbin/" + name, "/sbin/" + name }.FirstOrDefault(File.Exists) ?? name;

    /// <summary>"Structure needs cleaning": ext4 found its metadata damaged.</summary>
    private const int EUCLEAN = 117;
}
