using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>
/// Per-thread file-system identity: fsuid, fsgid and supplementary groups. glibc's setgroups
/// changes every thread of the process (it broadcasts the change); the raw system call changes
/// only the calling one, which is what a multi-threaded file server acting for different callers needs.
/// </summary>
public static unsafe partial class Libc
{
    private const long SYS_setgroups = 116;

    /// <summary>Sets the calling thread's fsuid; returns the previous one (pass -1 to only read it).</summary>
    [LibraryImport("libc", EntryPoint = "setfsuid")]
    public static partial int setfsuid(int uid);

    /// <summary>Sets the calling thread's fsgid; returns the previous one (pass -1 to only read it).</summary>
    [LibraryImport("libc", EntryPoint = "setfsgid")]
    public static partial int setfsgid(int gid);

    [LibraryImport("libc", EntryPoint = "getgroups", SetLastError = true)]
    public static partial int getgroups(int size, uint* list);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall_setgroups(long number, nint size, uint* list);

    /// <summary>setgroups(2) for the calling thread only; 0 or -1 with errno set.</summary>
    public static int setgroups_thread(int size, uint* list) => (int)syscall_setgroups(SYS_setgroups, size, list);

    public const int AT_EACCESS = 0x200;

    [LibraryImport("libc", EntryPoint = "faccessat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int faccessat(int dirfd, string path, int mode, int flags);
}
