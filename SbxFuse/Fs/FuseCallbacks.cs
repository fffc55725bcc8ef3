using System.Runtime.InteropServices;
using Hive.Interop;
using Hive.Interop.Fuse;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// The native entry points libfuse calls. They only translate arguments and never let an
/// exception cross into native code (it would take the process down): anything unexpected is EIO.
/// </summary>
internal static unsafe class FuseCallbacks
{
    public static GovernedFileSystem Fs { get; set; } = null!;

    /// <summary>Completed once the kernel's INIT request has been answered.</summary>
    public static TaskCompletionSource Initialized { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static FuseOperations Operations()
    {
        var ops = default(FuseOperations);
        ops.Init = &Init;
        ops.Getattr = &Getattr;
        ops.Readlink = &Readlink;
        ops.Mknod = &Mknod;
        ops.Mkdir = &Mkdir;
        ops.Unlink = &Unlink;
        ops.Rmdir = &Rmdir;
        ops.Symlink = &Symlink;
        ops.Rename = &Rename;
        ops.Link = &Link;
        ops.Chmod = &Chmod;
        ops.Chown = &Chown;
        ops.Truncate = &Truncate;
        ops.Open = &Open;
        ops.Read = &Read;
        ops.Write = &Write;
        ops.Statfs = &Statfs;
        // No flush: the kernel then stops sending FLUSH on every close (one round trip less per file);
        // descriptors are closed at release.
        ops.Release = &Release;
        ops.Fsync = &Fsync;
        ops.Opendir = &Opendir;
        ops.Readdir = &Readdir;
        ops.Releasedir = &Releasedir;
        ops.Access = &Access;
        ops.Create = &Create;
        ops.Utimens = &Utimens;
        ops.Fallocate = &Fallocate;
        ops.Getxattr = &Getxattr;
        ops.Setxattr = &Setxattr;
        ops.Listxattr = &Listxattr;
        ops.Removexattr = &Removexattr;
        return ops;
    }

    private static string S(byte* p) => Marshal.PtrToStringUTF8((nint)p) ?? string.Empty;

    /// <summary>The path, or null when libfuse has none (an open file that was removed; nullpath_ok).</summary>
    private static string? N(byte* p) => p is null ? null : Marshal.PtrToStringUTF8((nint)p);

    /// <summary>A path operation: done under the caller's identity when the caller is not root (<see cref="CallerIdentity"/>).</summary>
    private static int AsCaller(Func<int> op)
    {
        if (!Fs.Admit())
        {
            return -Libc.EDQUOT;
        }

        if (!CallerIdentity.Assume())
        {
            return -Libc.EIO;
        }

        try
        {
            return Guard(op);
        }
        finally
        {
            CallerIdentity.Restore();
        }
    }

    /// <summary>
    /// An operation on an open handle that is recorded (read, write, fsync, readdir, fallocate): refused
    /// with EDQUOT while the sandbox's event budget is exhausted. Release is never refused (it frees the handle).
    /// </summary>
    private static int Admitted(Func<int> op) => Fs.Admit() ? Guard(op) : -Libc.EDQUOT;

    private static int Guard(Func<int> op)
    {
        try
        {
            return op();
        }
        catch (Exception)
        {
            return -Libc.EIO;
        }
    }

    /// <summary>
    /// use_ino: the backing inode numbers (stable across remounts; git and tar compare them).
    /// hard_remove + nullpath_ok: unlinking an open file really unlinks it (no .fuse_hidden files)
    /// and its handle keeps working. Timeouts (attributes, entries and misses) and
    /// auto_cache (page cache kept across opens unless size/mtime changed) come from the mount options.
    /// </summary>
    [UnmanagedCallersOnly]
    private static void* Init(void* connection, FuseConfig* config)
    {

        config->UseIno = 1;
        config->HardRemove = 1;
        config->NullpathOk = 1;
        Initialized.TrySetResult();
        return null;
    }

    [UnmanagedCallersOnly]
    private static int Getattr(byte* path, Stat* stat, FuseFileInfo* fi)
    {
        var p = N(path);
        var st = (nint)stat;
        var f = (nint)fi;
        var rc = AsCaller(() => Fs.Getattr(p, (Stat*)st, (FuseFileInfo*)f));
        if (rc == 0)
        {
            IdMap.MapOut(stat);
        }

        return rc;
    }

    [UnmanagedCallersOnly]
    private static int Readlink(byte* path, byte* buffer, nuint size)
    {
        var p = S(path);
        var b = (nint)buffer;
        return AsCaller(() => Fs.Readlink(p, (byte*)b, size));
    }

    /// <summary>Only for nodes other than regular files (libfuse makes those with create).</summary>
    [UnmanagedCallersOnly]
    private static int Mknod(byte* path, uint mode, ulong rdev)
    {
        var p = S(path);
        return AsCaller(() => Fs.Mknod(p, mode));
    }

    [UnmanagedCallersOnly]
    private static int Mkdir(byte* path, uint mode)
    {
        var p = S(path);
        return AsCaller(() => Fs.Mkdir(p, mode));
    }

    [UnmanagedCallersOnly]
    private static int Unlink(byte* path)
    {
        var p = S(path);
        return AsCaller(() => Fs.Unlink(p));
    }

    [UnmanagedCallersOnly]
    private static int Rmdir(byte* path)
    {
        var p = S(path);
        return AsCaller(() => Fs.Rmdir(p));
    }

    [UnmanagedCallersOnly]
    private static int Symlink(byte* target, byte* path)
    {
        var t = S(target);
        var p = S(path);
        return AsCaller(() => Fs.Symlink(t, p));
    }

    [UnmanagedCallersOnly]
    private static int Rename(byte* from, byte* to, uint flags)
    {
        var f = S(from);
        var t = S(to);
        return AsCaller(() => Fs.Rename(f, t, flags));
    }

    [UnmanagedCallersOnly]
    private static int Link(byte* from, byte* to)
    {
        var f = S(from);
        var t = S(to);
        return AsCaller(() => Fs.Link(f, t));
    }

    [UnmanagedCallersOnly]
    private static int Chmod(byte* path, uint mode, FuseFileInfo* fi)
    {
        var p = S(path);
        return AsCaller(() => Fs.Chmod(p, mode));
    }

    /// <summary>The kernel names the new owner by host id; the backing directory stores the sandbox's (<see cref="IdMap"/>).</summary>
    [UnmanagedCallersOnly]
    private static int Chown(byte* path, uint uid, uint gid, FuseFileInfo* fi)
    {
        var p = S(path);
        if (!IdMap.TryArgumentToInside(uid, out var insideUid) || !IdMap.TryArgumentToInside(gid, out var insideGid))
        {
            return -Libc.EINVAL;
        }

        return AsCaller(() => Fs.Chown(p, insideUid, insideGid));
    }

    [UnmanagedCallersOnly]
    private static int Truncate(byte* path, long size, FuseFileInfo* fi)
    {
        var p = N(path);
        var f = (nint)fi;
        return AsCaller(() => Fs.Truncate(p, size, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Open(byte* path, FuseFileInfo* fi)
    {
        var p = S(path);
        var f = (nint)fi;
        return AsCaller(() => Fs.Open(p, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Create(byte* path, uint mode, FuseFileInfo* fi)
    {
        var p = S(path);
        var f = (nint)fi;
        return AsCaller(() => Fs.Create(p, mode, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Read(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var p = N(path);
        var b = (nint)buffer;
        var f = (nint)fi;
        return Admitted(() => Fs.Read(p, (byte*)b, size, offset, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Write(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var p = N(path);
        var b = (nint)buffer;
        var f = (nint)fi;
        return Admitted(() => Fs.Write(p, (byte*)b, size, offset, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Statfs(byte* path, StatVfs* stat)
    {
        var s = (nint)stat;
        return Guard(() => Fs.Statfs((StatVfs*)s));
    }

    [UnmanagedCallersOnly]
    private static int Release(byte* path, FuseFileInfo* fi)
    {
        var p = N(path);
        var f = (nint)fi;
        return Guard(() => Fs.Release(p, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Fsync(byte* path, int datasync, FuseFileInfo* fi)
    {
        var p = N(path);
        var f = (nint)fi;
        return Admitted(() => Fs.Fsync(p, datasync, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Readdir(byte* path, void* buffer, delegate* unmanaged<void*, byte*, Stat*, long, int, int> filler, long offset, FuseFileInfo* fi, int flags)
    {
        var p = N(path);
        var b = (nint)buffer;
        var fill = (nint)filler;
        var f = (nint)fi;
        var plus = (flags & 1) != 0; // FUSE_READDIR_PLUS
        return Admitted(() => Fs.Readdir(p, (void*)b, (delegate* unmanaged<void*, byte*, Stat*, long, int, int>)fill, plus, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Access(byte* path, int mask)
    {
        var p = S(path);
        return AsCaller(() => Fs.CheckAccess(p, mask));
    }

    [UnmanagedCallersOnly]
    private static int Utimens(byte* path, Timespec* times, FuseFileInfo* fi)
    {
        var p = S(path);
        var t = (nint)times;
        return AsCaller(() => Fs.Utimens(p, (Timespec*)t));
    }

    [UnmanagedCallersOnly]
    private static int Fallocate(byte* path, int mode, long offset, long length, FuseFileInfo* fi)
    {
        var p = N(path);
        var f = (nint)fi;
        return Admitted(() => Fs.Fallocate(p, mode, offset, length, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Getxattr(byte* path, byte* name, byte* value, nuint size)
    {
        var p = S(path);
        var n = S(name);
        var v = (nint)value;
        return AsCaller(() => Fs.Getxattr(p, n, (byte*)v, size));
    }

    [UnmanagedCallersOnly]
    private static int Setxattr(byte* path, byte* name, byte* value, nuint size, int flags)
    {
        var p = S(path);
        var n = S(name);
        var v = (nint)value;
        return AsCaller(() => Fs.Setxattr(p, n, (byte*)v, size, flags));
    }

    [UnmanagedCallersOnly]
    private static int Listxattr(byte* path, byte* list, nuint size)
    {
        var p = S(path);
        var l = (nint)list;
        return AsCaller(() => Fs.Listxattr(p, (byte*)l, size));
    }

    [UnmanagedCallersOnly]
    private static int Removexattr(byte* path, byte* name)
    {
        var p = S(path);
        var n = S(name);
        return AsCaller(() => Fs.Removexattr(p, n));
    }

    [UnmanagedCallersOnly]
    private static int Opendir(byte* path, FuseFileInfo* fi)
    {
        var p = S(path);
        var f = (nint)fi;
        return AsCaller(() => Fs.Opendir(p, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Releasedir(byte* path, FuseFileInfo* fi)
    {
        var f = (nint)fi;
        return Guard(() => Fs.Releasedir((FuseFileInfo*)f));
    }
}
