using Hive.Interop;
using Hive.Protos.V1;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// Local workspaces with a <c>quota</c>: the workspace's files live in an ext4 image beside its
/// directory (<c>&lt;data&gt;/workspaces/&lt;sandbox&gt;/&lt;mount id&gt;.img</c>, <see cref="DiskImage"/>),
/// which is loop-mounted on that directory while the sandbox exists — so the host sees the files where
/// it always did, SbxFuse serves the mounted root, and a write past the quota fails with ENOSPC in the
/// backing file system (SbxFuse passes the errno on and records it). The image is the workspace: it is
/// kept when the sandbox is destroyed (unmounted, detached) and mounted again when a sandbox of the
/// same name is created, or after a host reboot.
/// </summary>
internal sealed partial class WorkspaceVolumes(SandboxLayout layout, ILogger logger)
{
    private const int ESTALE = 116;

    public static bool HasQuota(FsMount spec) => spec.QuotaBytes > 0;

    /// <summary>
    /// Mounts the workspace's file system on its directory unless it is there already. The directory
    /// is the one the Controller recorded (re-opened without following links, identity checked) and
    /// the mount is made on its descriptor, not on a path.
    /// </summary>
    /// <exception cref="WorkspaceRootException">Something else is mounted there, or the directory is not the recorded one.</exception>
    public async Task EnsureAsync(FsMount spec, CancellationToken cancellationToken)
    {
        var image = ImagePath(spec);
        if (Libc.IsMountPoint(spec.Source))
        {
            if (DiskImage.IsMountedFrom(spec.Source, image))
            {
                return;
            }

            throw new WorkspaceRootException($"workspace {spec.Mount}: another file system is mounted on {spec.Source}; not served", ESTALE);
        }

        var fresh = !File.Exists(image);
        if (fresh)
        {
            await DiskImage.CreateAsync(image, spec.QuotaBytes, spec.QuotaInodes, cancellationToken);
            LogCreated(logger, spec.Mount, spec.QuotaBytes, spec.QuotaInodes);
        }
        else if (new FileInfo(image).Length < (long)spec.QuotaBytes)
        {
            await DiskImage.GrowAsync(image, spec.QuotaBytes, cancellationToken);
            LogGrown(logger, spec.Mount, spec.QuotaBytes);
        }

        var directory = WorkspaceRoot.Open(spec, out _);
        try
        {
            await DiskImage.MountAsync(image, "/proc/self/fd/" + directory.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken);
        }
        finally
        {
            Libc.close(directory);
        }

        if (fresh)
        {
            // mke2fs makes lost+found, which the sandbox would find in its workspace; e2fsck makes it
            // again should it ever need one.
            try
            {
                Directory.Delete(Path.Combine(spec.Source, "lost+found"));
            }
            catch (IOException)
            {
            }
        }

        LogMounted(logger, spec.Mount, image);
    }

    /// <summary>
    /// SbxFuse's root: the workspace's directory re-opened beneath the workspaces directory without
    /// following links — which lands on the root of the file system mounted there — and accepted only
    /// if that is the root of the file system in the workspace's own image (device checked through the
    /// loop device's record of its backing file).
    /// </summary>
    public static int OpenRoot(FsMount spec)
    {
        var image = ImagePath(spec);
        var device = DiskImage.MountedDevice(image)
            ?? throw new WorkspaceRootException($"workspace {spec.Mount}: its file system ({image}) is not mounted; not served", ESTALE);
        var expected = spec.Clone();
        expected.SourceDev = device;
        expected.SourceIno = DiskImage.RootInode;
        return WorkspaceRoot.Open(expected, out _);
    }

    /// <summary>On destroy, after every SbxFuse has stopped: unmount each workspace's file system (its image stays).</summary>
    public async Task UnmountAsync(List<string> problems, CancellationToken cancellationToken)
    {
        foreach (var spec in layout.Spec.Mounts.Where(HasQuota))
        {
            string image;
            try
            {
                image = ImagePath(spec);
            }
            catch (WorkspaceRootException)
            {
                continue; // never mounted
            }

            if (DiskImage.IsMountedFrom(spec.Source, image) && !await DiskImage.UnmountAsync(spec.Source, image, problems, cancellationToken))
            {
                LogStillAttached(logger, spec.Mount);
            }
        }
    }

    /// <summary>Usage of every mounted workspace file system.</summary>
    public IEnumerable<DiskUsage> Usage()
    {
        foreach (var spec in layout.Spec.Mounts.Where(HasQuota))
        {
            if (DiskImage.Usage(spec.Source) is { } usage)
            {
                yield return new DiskUsage { Mount = spec.Mount, Bytes = usage.UsedBytes, LimitBytes = spec.QuotaBytes, Inodes = usage.UsedInodes, LimitInodes = usage.Inodes };
            }
        }
    }

    /// <summary>The image must be a sibling of the workspace's directory, beneath the directory both lie in (nothing else is ever mounted).</summary>
    private static string ImagePath(FsMount spec)
    {
        var image = spec.Image;
        var beneath = spec.SourceBeneath.TrimEnd('/') + "/";
        if (image.Length == 0 || spec.SourceBeneath.Length == 0 || !image.StartsWith(beneath, StringComparison.Ordinal)
            || Path.GetDirectoryName(image) != Path.GetDirectoryName(spec.Source) || image.Split('/').Any(c => c is "." or "..")
            || !image.EndsWith(".img", StringComparison.Ordinal))
        {
            throw new WorkspaceRootException($"workspace {spec.Mount}: its image '{image}' is not beside its directory {spec.Source}; not served", Libc.EINVAL);
        }

        return image;
    }

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "Workspace {Mount}: file system of {Bytes} bytes and {Inodes} inodes created")]
    private static partial void LogCreated(ILogger logger, string mount, ulong bytes, ulong inodes);

    [LoggerMessage(EventId = 114, Level = LogLevel.Information, Message = "Workspace {Mount}: file system grown to {Bytes} bytes")]
    private static partial void LogGrown(ILogger logger, string mount, ulong bytes);

    [LoggerMessage(EventId = 115, Level = LogLevel.Information, Message = "Workspace {Mount}: {Image} mounted on its directory")]
    private static partial void LogMounted(ILogger logger, string mount, string image);

    [LoggerMessage(EventId = 116, Level = LogLevel.Warning, Message = "Workspace {Mount}: unmounted, but its loop device is still attached (held outside the sandbox); it detaches when released")]
    private static partial void LogStillAttached(ILogger logger, string mount);
}
