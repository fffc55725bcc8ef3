using System.Runtime.InteropServices;
using System.Text;

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

        int pid;
        var attr = NativeMemory.AllocZeroed(Libc.SpawnAttrSize);
        var actions = NativeMemory.AllocZeroed(Libc.SpawnFileActionsSize);
        var all = NativeMemory.AllocZeroed(Libc.SigSetSize);
        var none = NativeMemory.AllocZeroed(Libc.SigSetSize);
        var strings = new List<nint>();
        try
        {
            Libc.posix_spawnattr_init(attr);
            Libc.posix_spawn_file_actions_init(actions);
            Libc.sigfillset(all);
            Libc.sigdelset(all, Libc.SIGKILL);
            Libc.sigdelset(all, 19); // SIGSTOP cannot be defaulted either
            Libc.sigemptyset(none);
            Libc.posix_spawnattr_setsigdefault(attr, all);
            Libc.posix_spawnattr_setsigmask(attr, none);
            Libc.posix_spawnattr_setflags(attr, (short)(Libc.POSIX_SPAWN_SETSIGDEF | Libc.POSIX_SPAWN_SETSIGMASK));
            Libc.posix_spawn_file_actions_adddup2(actions, copy, 3);

            var env = Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>().Select(e => $"{e.Key}={e.Value}").ToList();
            var argvPtr = Array(argv, strings);
            var envPtr = Array(env, strings);
            var rc = Libc.posix_spawn(out pid, argvPtr[0], actions, attr, argvPtr, envPtr);
            if (rc != 0)
            {
                throw new SyscallException("posix_spawn", rc, argv[0]);
            }
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(actions);
            Libc.posix_spawnattr_destroy(attr);
            NativeMemory.Free(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(all);
            NativeMemory.Free(none);
            foreach (var p in strings)
            {
                NativeMemory.Free((void*)p);
            }

            Libc.close(copy);
        }

        return pid;
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

    /// <summary>A NULL-terminated array of NUL-terminated UTF-8 strings in native memory (freed by the caller through <paramref name="owned"/>).</summary>
    private static byte** Array(IReadOnlyList<string> values, List<nint> owned)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(nint));
        owned.Add((nint)array);
        for (var i = 0; i < values.Count; i++)
        {
            if (values[i].Contains('\0', StringComparison.Ordinal))
            {
                throw new ArgumentException("strings passed to a process must not contain NUL");
            }

            var bytes = Encoding.UTF8.GetBytes(values[i]);
            var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
            owned.Add((nint)p);
            bytes.CopyTo(new Span<byte>(p, bytes.Length));
            p[bytes.Length] = 0;
            array[i] = p;
        }

        return array;
    }
}
