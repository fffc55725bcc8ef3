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

    public static FuseOperations Operations()
    {
        var ops = default(FuseOperations);
        ops.Getattr = &Getattr;
        ops.Readlink = &Readlink;
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
        ops.Flush = &Flush;
        ops.Release = &Release;
        ops.Fsync = &Fsync;
        ops.Readdir = &Readdir;
        ops.Access = &Access;
        ops.Create = &Create;
        ops.Utimens = &Utimens;
        return ops;
    }

    private static string S(byte* p) => Marshal.PtrToStringUTF8((nint)p) ?? string.Empty;

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

    [UnmanagedCallersOnly]
    private static int Getattr(byte* path, Stat* stat, FuseFileInfo* fi)
    {
        var p = S(path);
        var st = (nint)stat;
        return Guard(() => Fs.Getattr(p, (Stat*)st));
    }

    [UnmanagedCallersOnly]
    private static int Readlink(byte* path, byte* buffer, nuint size)
    {
        var p = S(path);
        var b = (nint)buffer;
        return Guard(() => Fs.Readlink(p, (byte*)b, size));
    }

    [UnmanagedCallersOnly]
    private static int Mkdir(byte* path, uint mode)
    {
        var p = S(path);
        return Guard(() => Fs.Mkdir(p, mode));
    }

    [UnmanagedCallersOnly]
    private static int Unlink(byte* path)
    {
        var p = S(path);
        return Guard(() => Fs.Unlink(p));
    }

    [UnmanagedCallersOnly]
    private static int Rmdir(byte* path)
    {
        var p = S(path);
        return Guard(() => Fs.Rmdir(p));
    }

    [UnmanagedCallersOnly]
    private static int Symlink(byte* target, byte* path)
    {
        var t = S(target);
        var p = S(path);
        return Guard(() => Fs.Symlink(t, p));
    }

    [UnmanagedCallersOnly]
    private static int Rename(byte* from, byte* to, uint flags)
    {
        var f = S(from);
        var t = S(to);
        return Guard(() => Fs.Rename(f, t, flags));
    }

    [UnmanagedCallersOnly]
    private static int Link(byte* from, byte* to)
    {
        var f = S(from);
        var t = S(to);
        return Guard(() => Fs.Link(f, t));
    }

    [UnmanagedCallersOnly]
    private static int Chmod(byte* path, uint mode, FuseFileInfo* fi)
    {
        var p = S(path);
        return Guard(() => Fs.Chmod(p, mode));
    }

    [UnmanagedCallersOnly]
    private static int Chown(byte* path, uint uid, uint gid, FuseFileInfo* fi)
    {
        var p = S(path);
        return Guard(() => Fs.Chown(p, uid, gid));
    }

    [UnmanagedCallersOnly]
    private static int Truncate(byte* path, long size, FuseFileInfo* fi)
    {
        var p = S(path);
        var f = (nint)fi;
        return Guard(() => Fs.Truncate(p, size, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Open(byte* path, FuseFileInfo* fi)
    {
        var p = S(path);
        var f = (nint)fi;
        return Guard(() => Fs.Open(p, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Create(byte* path, uint mode, FuseFileInfo* fi)
    {
        var p = S(path);
        var f = (nint)fi;
        return Guard(() => Fs.Create(p, mode, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Read(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var p = S(path);
        var b = (nint)buffer;
        var f = (nint)fi;
        return Guard(() => Fs.Read(p, (byte*)b, size, offset, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Write(byte* path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var p = S(path);
        var b = (nint)buffer;
        var f = (nint)fi;
        return Guard(() => Fs.Write(p, (byte*)b, size, offset, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Statfs(byte* path, StatVfs* stat)
    {
        var s = (nint)stat;
        return Guard(() => Fs.Statfs((StatVfs*)s));
    }

    [UnmanagedCallersOnly]
    private static int Flush(byte* path, FuseFileInfo* fi)
    {
        var f = (nint)fi;
        return Guard(() => Fs.Flush((FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Release(byte* path, FuseFileInfo* fi)
    {
        var p = S(path);
        var f = (nint)fi;
        return Guard(() => Fs.Release(p, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Fsync(byte* path, int datasync, FuseFileInfo* fi)
    {
        var f = (nint)fi;
        return Guard(() => Fs.Fsync(datasync, (FuseFileInfo*)f));
    }

    [UnmanagedCallersOnly]
    private static int Readdir(byte* path, void* buffer, delegate* unmanaged<void*, byte*, Stat*, long, int, int> filler, long offset, FuseFileInfo* fi, int flags)
    {
        var p = S(path);
        var b = (nint)buffer;
        var fill = (nint)filler;
        return Guard(() => Fs.Readdir(p, (void*)b, (delegate* unmanaged<void*, byte*, Stat*, long, int, int>)fill));
    }

    [UnmanagedCallersOnly]
    private static int Access(byte* path, int mask)
    {
        var p = S(path);
        return Guard(() => Fs.CheckAccess(p, mask));
    }

    [UnmanagedCallersOnly]
    private static int Utimens(byte* path, Timespec* times, FuseFileInfo* fi)
    {
        var p = S(path);
        var t = (nint)times;
        return Guard(() => Fs.Utimens(p, (Timespec*)t));
    }
}
