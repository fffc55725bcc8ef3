using Hive.Interop;
using Hive.Protos.V1;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// The sandbox's <c>disk</c>: its writable layer — the overlay's upper and work directories, so every
/// file it changes or adds, <c>/tmp</c> included — lives on an ext4 file system of its own
/// (<see cref="DiskImage"/>: <c>&lt;state&gt;/disk.img</c>, mounted at <c>&lt;state&gt;/disk</c>) with
/// the sandbox's byte and inode limits. Ensured before the rootfs overlay, adopted when it is mounted
/// already (a restarted Sbxd), mounted again from its image after a host reboot, and gone with the
/// state dir. A sandbox made before disk quotas (no <c>disk</c> in its spec) keeps its upper
/// directory in the state dir.
/// </summary>
internal sealed partial class DiskQuota(SandboxLayout layout, ILogger logger)
{
    public bool Enabled => layout.Spec.HasDiskBytes;

    /// <summary>64 Ki inodes per GiB (one per 16 KiB, mke2fs's own default ratio), at least 1024: for a spec without a count.</summary>
    private ulong Inodes => layout.Spec.DiskInodes > 0 ? layout.Spec.DiskInodes : Math.Max(1024, layout.Spec.DiskBytes / 16384);

    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        if (Libc.IsMountPoint(layout.DiskMount))
        {
            if (!DiskImage.IsMountedFrom(layout.DiskMount, layout.DiskImage))
            {
                throw new InvalidOperationException($"{layout.DiskMount} is mounted, but not from the sandbox's disk image");
            }

            LogAdopted(logger, layout.Name);
            return;
        }

        if (!File.Exists(layout.DiskImage))
        {
            await DiskImage.CreateAsync(layout.DiskImage, layout.Spec.DiskBytes, Inodes, cancellationToken);
            LogCreated(logger, layout.Name, layout.Spec.DiskBytes, Inodes);
        }

        Directory.CreateDirectory(layout.DiskMount, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        await DiskImage.MountAsync(layout.DiskImage, layout.DiskMount, cancellationToken);
    }

    /// <summary>Bytes and inodes the writable layer uses against its limits; null without a disk (or while it is not mounted).</summary>
    public (ulong UsedBytes, ulong LimitBytes, ulong UsedInodes, ulong LimitInodes)? Usage()
    {
        if (!Enabled || DiskImage.Usage(layout.DiskMount) is not { } usage)
        {
            return null;
        }

        return (usage.UsedBytes, layout.Spec.DiskBytes, usage.UsedInodes, usage.Inodes);
    }

    /// <summary>After the rootfs is unmounted: the disk's mount goes, and its loop device with it (the image goes with the state dir).</summary>
    public async Task TearDownAsync(List<string> problems, CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        if (!await DiskImage.UnmountAsync(layout.DiskMount, layout.DiskImage, problems, cancellationToken))
        {
            LogStillAttached(logger, layout.Name);
        }
    }

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Sandbox {Name}: disk of {Bytes} bytes and {Inodes} inodes created")]
    private static partial void LogCreated(ILogger logger, string name, ulong bytes, ulong inodes);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Sandbox {Name}: adopted its mounted disk")]
    private static partial void LogAdopted(ILogger logger, string name);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "Sandbox {Name}: its disk is unmounted but its loop device is still attached (held outside the sandbox); it detaches when released")]
    private static partial void LogStillAttached(ILogger logger, string name);
}
