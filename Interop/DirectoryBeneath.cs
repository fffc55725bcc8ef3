using System.Runtime.InteropServices;
using Hive.Interop.Fuse;

namespace Hive.Interop;

/// <summary>
/// Opening a directory beneath another one without following any symbolic link, creating missing
/// components on the way if asked — the way a workspace root inside an operator's <c>--fs-roots</c>
/// directory is resolved (Controller) and re-opened (Sbxd). Every step is relative to the descriptor
/// of the step before, so nothing can be swapped in between two checks.
/// </summary>
public static unsafe partial class Libc
{
    public const int F_DUPFD_CLOEXEC = 1030;

    private const ulong BeneathNoLinks = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

    /// <summary>
    /// Opens <paramref name="relative"/> (slash-separated names, no "." or "..") beneath
    /// <paramref name="baseFd"/> as an O_PATH directory descriptor (close-on-exec), one component at a
    /// time: a component that is a symlink fails with ELOOP, one that is not a directory with ENOTDIR.
    /// With <paramref name="create"/>, a missing component is made with <paramref name="mode"/>.
    /// Returns the descriptor, or a negative errno and in <paramref name="failedAt"/> the path up to
    /// the component that failed.
    /// </summary>
    public static int OpenDirectoryBeneath(int baseFd, string relative, bool create, uint mode, out string failedAt)
    {
        failedAt = string.Empty;
        var current = fcntl(baseFd, F_DUPFD_CLOEXEC, 0);
        if (current < 0)
        {
            return -Marshal.GetLastPInvokeError();
        }

        var walked = string.Empty;
        foreach (var name in relative.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            walked = walked.Length == 0 ? name : walked + "/" + name;
            if (name is "." or "..")
            {
                close(current);
                failedAt = walked;
                return -EINVAL;
            }

            var next = openat2(current, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, BeneathNoLinks);
            if (next < 0 && Marshal.GetLastPInvokeError() == ENOENT && create)
            {
                if (mkdirat(current, name, mode) != 0 && Marshal.GetLastPInvokeError() != EEXIST)
                {
                    var error = Marshal.GetLastPInvokeError();
                    close(current);
                    failedAt = walked;
                    return -error;
                }

                next = openat2(current, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, BeneathNoLinks);
            }

            if (next < 0)
            {
                // A symlink as the component: ELOOP from RESOLVE_NO_SYMLINKS, or ENOTDIR from O_DIRECTORY (said as ELOOP too).
                var error = Marshal.GetLastPInvokeError();
                error = error == ENOTDIR && IsSymlinkAt(current, name) ? ELOOP : error;
                close(current);
                failedAt = walked;
                return -error;
            }

            close(current);
            current = next;
        }

        return current;
    }

    /// <summary>Device and inode of an open descriptor: the identity a workspace root is pinned to.</summary>
    public static bool TryIdentity(int fd, out ulong device, out ulong inode)
    {
        var stat = default(Stat);
        var ok = fstat(fd, &stat) == 0;
        device = ok ? stat.Dev : 0;
        inode = ok ? stat.Ino : 0;
        return ok;
    }

    private static bool IsSymlinkAt(int dirFd, string name)
    {
        var stat = default(Stat);
        return fstatat(dirFd, name, &stat, AT_SYMLINK_NOFOLLOW) == 0 && (stat.Mode & 0xF000) == 0xA000;
    }
}
