namespace Hive.Interop;

/// <summary>Who owns a path on the host (lstat(2): a symlink is not followed).</summary>
public static unsafe partial class Libc
{
    /// <summary>The owner and group of <paramref name="path"/> itself; false when it cannot be stat'ed.</summary>
    public static bool TryOwner(string path, out uint uid, out uint gid)
    {
        var stat = default(Fuse.Stat);
        var ok = fstatat(AT_FDCWD, path, &stat, AT_SYMLINK_NOFOLLOW) == 0;
        uid = ok ? stat.Uid : 0;
        gid = ok ? stat.Gid : 0;
        return ok;
    }
}
