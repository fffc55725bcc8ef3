using System.Buffers.Binary;
using Hive.Controller.Api;

namespace Hive.Controller.Sandboxes.Config;

/// <summary>
/// Decides, when a sandbox is created, what quota each of its workspaces has. A local workspace is
/// an ext4 image beside its directory (<c>&lt;mount id&gt;.img</c>), made on first use with the asked
/// <c>quota</c> or the operator's default; one that exists keeps its size unless a larger quota is
/// asked for (it grows; it never shrinks — a smaller one is a 409). A local workspace made before
/// quotas (a plain directory with files and no image) stays a plain directory: it cannot get a quota
/// without moving its files, so asking for one is a 409. A shared workspace (<c>root</c>) is the
/// operator's own directory and has no quota.
/// </summary>
internal static class WorkspaceQuotas
{
    public static IReadOnlyList<FsMountConfig> Resolve(IReadOnlyList<FsMountConfig> fs, Func<string, string> workspaceDir, DiskSettings disks)
    {
        var result = new List<FsMountConfig>(fs.Count);
        for (var i = 0; i < fs.Count; i++)
        {
            var m = fs[i];
            if (m.Root is not null)
            {
                result.Add(m with { Quota = 0, QuotaInodes = 0 });
                continue;
            }

            var directory = workspaceDir(m.Mount);
            var image = new FileInfo(directory + ".img");
            if (image.Exists && image.LinkTarget is null)
            {
                var size = image.Length;
                var inodes = InodeCount(image.FullName) ?? disks.Inodes(size);
                if (m.Quota is not { } asked)
                {
                    result.Add(m with { Quota = size, QuotaInodes = inodes });
                }
                else if (asked < size)
                {
                    throw ApiException.Conflict(
                        $"fs[{i}].quota: the workspace at {m.Mount} already holds a {MemorySize.Format(size)} file system; it can grow, not shrink (ask for {MemorySize.Format(size)} or more, or leave quota out)");
                }
                else
                {
                    // Growing adds block groups of the same shape: inodes grow in proportion.
                    result.Add(m with { Quota = asked, QuotaInodes = (long)((Int128)inodes * asked / size) });
                }
            }
            else if (Directory.Exists(directory) && Directory.EnumerateFileSystemEntries(directory).Any())
            {
                if (m.Quota is not null)
                {
                    throw ApiException.Conflict(
                        $"fs[{i}].quota: the workspace at {m.Mount} holds files in a plain directory made before workspace quotas; it keeps working without a quota (leave quota out), or move its files away to start it with one");
                }

                result.Add(m with { Quota = 0, QuotaInodes = 0 });
            }
            else
            {
                var quota = m.Quota ?? disks.DefaultWorkspaceQuotaBytes;
                result.Add(m with { Quota = quota, QuotaInodes = disks.Inodes(quota) });
            }
        }

        return result;
    }

    /// <summary>s_inodes_count from the ext4 superblock (1024 bytes in; magic 0xEF53 at 56), or null if it is not one.</summary>
    private static long? InodeCount(string image)
    {
        try
        {
            using var file = File.OpenHandle(image, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> superblock = stackalloc byte[64];
            if (RandomAccess.Read(file, superblock, 1024) < 64 || BinaryPrimitives.ReadUInt16LittleEndian(superblock[56..]) != 0xEF53)
            {
                return null;
            }

            return BinaryPrimitives.ReadUInt32LittleEndian(superblock);
        }
        catch (IOException)
        {
            return null;
        }
    }
}
