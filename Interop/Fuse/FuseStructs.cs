using System.Runtime.InteropServices;

namespace Hive.Interop.Fuse;

// x86_64 layouts of the libfuse3 3.14 and glibc structures the high-level API passes around.
// tests/Hive.Interop.Tests compiles a C program that prints sizeof/offsetof of the real structs
// and compares every field with these mirrors.

[StructLayout(LayoutKind.Sequential)]
public struct Timespec
{
    public long Seconds;
    public long Nanoseconds;
}

/// <summary>glibc <c>struct stat</c> (144 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Stat
{
    public ulong Dev;
    public ulong Ino;
    public ulong Nlink;
    public uint Mode;
    public uint Uid;
    public uint Gid;
    public int Pad0;
    public ulong Rdev;
    public long Size;
    public long Blksize;
    public long Blocks;
    public Timespec Atime;
    public Timespec Mtime;
    public Timespec Ctime;
    public long Reserved0;
    public long Reserved1;
    public long Reserved2;
}

/// <summary>glibc <c>struct statvfs</c> (112 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct StatVfs
{
    public ulong Bsize;
    public ulong Frsize;
    public ulong Blocks;
    public ulong Bfree;
    public ulong Bavail;
    public ulong Files;
    public ulong Ffree;
    public ulong Favail;
    public ulong Fsid;
    public ulong Flag;
    public ulong Namemax;
    public int Spare0;
    public int Spare1;
    public int Spare2;
    public int Spare3;
    public int Spare4;
    public int Spare5;
}

/// <summary><c>struct fuse_file_info</c> (40 bytes; <c>fh</c> at 16).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct FuseFileInfo
{
    public int Flags;

    /// <summary>Bit field: writepage, direct_io, keep_cache, flush, nonseekable, flock_release, cache_readdir, noflush.</summary>
    public uint Bits;
    public uint Bits2;
    public ulong Fh;
    public ulong LockOwner;
    public uint PollEvents;

    public const uint DirectIo = 1u << 1;
    public const uint KeepCache = 1u << 2;
}

/// <summary><c>struct fuse_config</c> of libfuse 3.14 (128 bytes): what <c>init</c> may set.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseConfig
{
    public int SetGid;
    public uint Gid;
    public int SetUid;
    public uint Uid;
    public int SetMode;
    public uint Umask;
    public double EntryTimeout;
    public double NegativeTimeout;
    public double AttrTimeout;
    public int Intr;
    public int IntrSignal;
    public int Remember;
    public int HardRemove;
    public int UseIno;
    public int ReaddirIno;
    public int DirectIo;
    public int KernelCache;
    public int AutoCache;
    public int NoRofdFlush;
    public int AcAttrTimeoutSet;
    public double AcAttrTimeout;
    public int NullpathOk;
    public int ShowHelp;
    public byte* Modules;
    public int Debug;
}

/// <summary><c>struct fuse_args</c> (24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseArgs
{
    public int Argc;
    public byte** Argv;
    public int Allocated;
}

/// <summary><c>struct fuse_context</c>: who is calling.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseContext
{
    public void* Fuse;
    public uint Uid;
    public uint Gid;
    public int Pid;
    public void* PrivateData;
    public uint Umask;
}

/// <summary>
/// <c>struct fuse_operations</c> of libfuse 3.14: 42 function pointers (336 bytes), in header order.
/// Unused entries stay null and libfuse answers ENOSYS for them.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseOperations
{
    public delegate* unmanaged<byte*, Stat*, FuseFileInfo*, int> Getattr;
    public delegate* unmanaged<byte*, byte*, nuint, int> Readlink;
    public delegate* unmanaged<byte*, uint, ulong, int> Mknod;
    public delegate* unmanaged<byte*, uint, int> Mkdir;
    public delegate* unmanaged<byte*, int> Unlink;
    public delegate* unmanaged<byte*, int> Rmdir;
    public delegate* unmanaged<byte*, byte*, int> Symlink;
    public delegate* unmanaged<byte*, byte*, uint, int> Rename;
    public delegate* unmanaged<byte*, byte*, int> Link;
    public delegate* unmanaged<byte*, uint, FuseFileInfo*, int> Chmod;
    public delegate* unmanaged<byte*, uint, uint, FuseFileInfo*, int> Chown;
    public delegate* unmanaged<byte*, long, FuseFileInfo*, int> Truncate;
    public delegate* unmanaged<byte*, FuseFileInfo*, int> Open;
    public delegate* unmanaged<byte*, byte*, nuint, long, FuseFileInfo*, int> Read;
    public delegate* unmanaged<byte*, byte*, nuint, long, FuseFileInfo*, int> Write;
    public delegate* unmanaged<byte*, StatVfs*, int> Statfs;
    public delegate* unmanaged<byte*, FuseFileInfo*, int> Flush;
    public delegate* unmanaged<byte*, FuseFileInfo*, int> Release;
    public delegate* unmanaged<byte*, int, FuseFileInfo*, int> Fsync;
    public delegate* unmanaged<byte*, byte*, byte*, nuint, int, int> Setxattr;
    public delegate* unmanaged<byte*, byte*, byte*, nuint, int> Getxattr;
    public delegate* unmanaged<byte*, byte*, nuint, int> Listxattr;
    public delegate* unmanaged<byte*, byte*, int> Removexattr;
    public delegate* unmanaged<byte*, FuseFileInfo*, int> Opendir;
    public delegate* unmanaged<byte*, void*, delegate* unmanaged<void*, byte*, Stat*, long, int, int>, long, FuseFileInfo*, int, int> Readdir;
    public delegate* unmanaged<byte*, FuseFileInfo*, int> Releasedir;
    public delegate* unmanaged<byte*, int, FuseFileInfo*, int> Fsyncdir;
    public delegate* unmanaged<void*, FuseConfig*, void*> Init;
    public delegate* unmanaged<void*, void> Destroy;
    public delegate* unmanaged<byte*, int, int> Access;
    public delegate* unmanaged<byte*, uint, FuseFileInfo*, int> Create;
    public void* Lock;
    public delegate* unmanaged<byte*, Timespec*, FuseFileInfo*, int> Utimens;
    public void* Bmap;
    public void* Ioctl;
    public void* Poll;
    public void* WriteBuf;
    public void* ReadBuf;
    public void* Flock;
    public delegate* unmanaged<byte*, int, long, long, FuseFileInfo*, int> Fallocate;
    public void* CopyFileRange;
    public void* Lseek;
}

/// <summary><c>struct iovec</c> (16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct Iovec
{
    public byte* Base;
    public nuint Length;
}

/// <summary>
/// <c>struct fuse_custom_io</c> of libfuse 3.14 (32 bytes): how a session reads requests and writes
/// replies. <c>read</c> and <c>writev</c> are required; the splice entries may stay null.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct FuseCustomIo
{
    public delegate* unmanaged<int, Iovec*, int, void*, nint> Writev;
    public delegate* unmanaged<int, byte*, nuint, void*, nint> Read;
    public void* SpliceReceive;
    public void* SpliceSend;
}
