using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>
/// Runs a program with one of Sbxd's descriptors as its descriptor 3, and waits for it to exit.
/// </summary>
/// <remarks>
/// System.Diagnostics.Process passes no descriptors but stdio, and clearing close-on-exec on ours
/// for the moment of a start would leak it into every other process Sbxd starts meanwhile (runc,
/// the container): a host directory descriptor inside a container is an escape. posix_spawn's
/// dup2 file action sets it up in the child alone.
/// </remarks>
public static unsafe class DescriptorSpawn
{
    /// <summary>Runs <paramref name="argv"/> (with Sbxd's environment) and returns its exit status (128 + signal if killed).</summary>
    public static Task<int> RunAsync(IReadOnlyList<string> argv, int fd, CancellationToken cancellationToken)
    {
        var pid = Spawn(argv, fd);
        return Task.Run(() => WaitExit(pid), cancellationToken);
    }

    private static int Spawn(IReadOnlyList<string> argv, int fd)
    {
        // Never dup2 a descriptor onto itself (that would keep close-on-exec on some libcs): use a copy above 10.
        var copy = Libc.fcntl(fd, Libc.F_DUPFD_CLOEXEC, 10);
        if (copy < 0)
        {
            throw SyscallException.FromLastError("fcntl(F_DUPFD_CLOEXEC)");
        }

        try
        {
            var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>().Select(e => $"{e.Key}={e.Value}").ToList();
            using var request = new SpawnRequest().Dup2(copy, 3);
            return request.Prepare(argv, env)();
        }
        finally
        {
            Libc.close(copy);
        }
    }

    private static int WaitExit(int pid)
    {
        while (true)
        {
            var waited = Libc.waitpid(pid, out var status, 0);
            if (waited == pid)
            {
                return Libc.Exited(status) ? Libc.ExitStatus(status) : 128 + Libc.TermSignal(status);
            }

            if (waited < 0 && Marshal.GetLastPInvokeError() != Libc.EINTR)
            {
                throw SyscallException.FromLastError("waitpid");
            }
        }
    }
}
