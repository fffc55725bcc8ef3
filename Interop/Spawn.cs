using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>
/// posix_spawn and its attribute/file-action helpers (glibc). Hand-written because
/// System.Diagnostics.Process cannot start a child in a new session, reset signal dispositions
/// the runtime changed (SIGPIPE), or coexist with a PID-1 reaper that calls waitpid(-1).
/// </summary>
public static unsafe partial class Libc
{
    /// <summary>glibc: sizeof(posix_spawnattr_t) is 336, sizeof(posix_spawn_file_actions_t) 80 on x86_64; we allocate more.</summary>
    public const int SpawnAttrSize = 512;
    public const int SpawnFileActionsSize = 256;
    public const int SigSetSize = 128;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;
    public const short POSIX_SPAWN_SETSID = 0x80;

    [LibraryImport("libc", EntryPoint = "posix_spawn", SetLastError = false)]
    public static partial int posix_spawn(out int pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_init")]
    public static partial int posix_spawnattr_init(void* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    public static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    public static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);

    [LibraryImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    public static partial int posix_spawn_file_actions_addchdir_np(void* actions, byte* path);

    [LibraryImport("libc", EntryPoint = "sigemptyset")]
    public static partial int sigemptyset(void* set);

    [LibraryImport("libc", EntryPoint = "sigfillset")]
    public static partial int sigfillset(void* set);

    [LibraryImport("libc", EntryPoint = "sigdelset")]
    public static partial int sigdelset(void* set, int signal);
}
