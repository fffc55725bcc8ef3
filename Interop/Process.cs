using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>Process control: waitpid, kill, pipes, descriptor flags.</summary>
public static unsafe partial class Libc
{
    public const int WNOHANG = 1;
    public const int ECHILD = 10;
    public const int EINTR = 4;
    public const int ESRCH = 3;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int O_CLOEXEC = 0x80000;
    public const int F_GETFD = 1;
    public const int F_SETFD = 2;
    public const int FD_CLOEXEC = 1;

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    public static partial int waitpid(int pid, out int status, int options);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    public static partial int dup2(int oldFd, int newFd);

    [LibraryImport("libc", EntryPoint = "getpid")]
    public static partial int getpid();

    /// <summary>WIFEXITED / WEXITSTATUS / WTERMSIG from a wait status.</summary>
    public static bool Exited(int status) => (status & 0x7f) == 0;

    public static int ExitStatus(int status) => (status >> 8) & 0xff;

    public static int TermSignal(int status) => status & 0x7f;

    /// <summary>Marks a descriptor close-on-exec (or not).</summary>
    public static void SetCloseOnExec(int fd, bool value)
    {
        var flags = fcntl(fd, F_GETFD, 0);
        if (flags < 0 || fcntl(fd, F_SETFD, value ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC) < 0)
        {
            throw SyscallException.FromLastError("fcntl(F_SETFD)");
        }
    }
}
