namespace Hive.Controller.Sandboxes.Config;

/// <summary>
/// What a sandbox's <c>disk</c> and a workspace's <c>quota</c> default to and may be: the operator's
/// defaults (<c>--default-disk</c>, <c>--default-workspace-quota</c>), the inode ratio
/// (<c>--disk-inodes-per-gib</c>) and the largest size that makes sense here (the data directory's
/// file system: the images are sparse files on it).
/// </summary>
internal sealed record DiskSettings(long DefaultDiskBytes, long DefaultWorkspaceQuotaBytes, long InodesPerGiB, long MaxBytes)
{
    public static readonly DiskSettings Default = new(10L << 30, 10L << 30, 65536, long.MaxValue / 4);

    /// <summary>The inode limit of a file system of <paramref name="bytes"/>: <see cref="InodesPerGiB"/> per GiB, at least 1024.</summary>
    public long Inodes(long bytes) => Math.Max(1024, (long)((Int128)bytes * InodesPerGiB / (1L << 30)));
}
