using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>
/// openat2(2) (Linux 5.6+; glibc 2.36 has no wrapper, hence the raw syscall): opening a path
/// relative to a directory with the kernel guaranteeing the walk never leaves it — the basis for
/// touching an agent-controlled tree from the host without following its symlinks out.
/// </summary>
public static unsafe partial class Libc
{
    public const long SYS_openat2 = 437;
    public const int O_RDONLY = 0;
    public const int O_DIRECTORY = 0x10000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_PATH = 0x200000;
    public const int ELOOP = 40;
    public const int EXDEV = 18;

    /// <summary>Fail if the walk crosses a mount point.</summary>
    public const ulong RESOLVE_NO_XDEV = 0x01;

    /// <summary>No /proc/self/fd-style "magic" links.</summary>
    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;

    /// <summary>No symlinks at all, in any component.</summary>
    public const ulong RESOLVE_NO_SYMLINKS = 0x04;

    /// <summary>Every component (incl. "..", absolute symlinks) must stay beneath the starting directory.</summary>
    public const ulong RESOLVE_BENEATH = 0x08;

    [StructLayout(LayoutKind.Sequential)]
    public struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall_openat2(long number, int dirfd, byte* path, OpenHow* how, nuint size);

    /// <summary>openat2; returns the descriptor or -1 with errno set.</summary>
    public static int openat2(int dirfd, string path, int flags, uint mode, ulong resolve)
    {
        var how = new OpenHow { Flags = (ulong)(uint)flags, Mode = mode, Resolve = resolve };
        var bytes = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = bytes)
        {
            return (int)syscall_openat2(SYS_openat2, dirfd, p, &how, (nuint)sizeof(OpenHow));
        }
    }
}
