using System.Runtime.InteropServices;
using System.Text;
using Hive.Interop;

namespace Hive.Agent.Processes;

/// <summary>A spawned child in its own session (so its process group id is its pid), with piped stdio.</summary>
internal sealed unsafe class ChildProcess
{
    private ChildProcess(int pid, Task<int> status, int stdin, int stdout, int stderr)
    {
        Pid = pid;
        Status = status;
        Stdin = stdin;
        Stdout = stdout;
        Stderr = stderr;
    }

    public int Pid { get; }

    /// <summary>The raw wait status once the child has exited.</summary>
    public Task<int> Status { get; }

    /// <summary>Our ends of the child's stdio pipes; whoever consumes them (the pipe pump) closes them.</summary>
    public int Stdin { get; }

    public int Stdout { get; }

    public int Stderr { get; }

    /// <summary>
    /// Starts <paramref name="argv"/> with posix_spawn: new session (POSIX_SPAWN_SETSID), all signal
    /// dispositions reset to default (the runtime ignores SIGPIPE; children must not inherit that),
    /// empty signal mask, stdio on fresh pipes, working directory <paramref name="cwd"/>.
    /// </summary>
    public static ChildProcess Start(ChildReaper reaper, IReadOnlyList<string> argv, IReadOnlyList<string> env, string cwd)
    {
        int* p0 = stackalloc int[2];
        int* p1 = stackalloc int[2];
        int* p2 = stackalloc int[2];
        if (Libc.pipe2(p0, Libc.O_CLOEXEC) != 0)
        {
            throw SyscallException.FromLastError("pipe2");
        }

        if (Libc.pipe2(p1, Libc.O_CLOEXEC) != 0)
        {
            CloseAll(p0[0], p0[1]);
            throw SyscallException.FromLastError("pipe2");
        }

        if (Libc.pipe2(p2, Libc.O_CLOEXEC) != 0)
        {
            CloseAll(p0[0], p0[1], p1[0], p1[1]);
            throw SyscallException.FromLastError("pipe2");
        }

        var attr = NativeMemory.AllocZeroed(Libc.SpawnAttrSize);
        var actions = NativeMemory.AllocZeroed(Libc.SpawnFileActionsSize);
        var all = NativeMemory.AllocZeroed(Libc.SigSetSize);
        var none = NativeMemory.AllocZeroed(Libc.SigSetSize);
        using var strings = new NativeStrings();
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
            Libc.posix_spawnattr_setflags(attr, (short)(Libc.POSIX_SPAWN_SETSID | Libc.POSIX_SPAWN_SETSIGDEF | Libc.POSIX_SPAWN_SETSIGMASK));
            Libc.posix_spawn_file_actions_adddup2(actions, p0[0], 0);
            Libc.posix_spawn_file_actions_adddup2(actions, p1[1], 1);
            Libc.posix_spawn_file_actions_adddup2(actions, p2[1], 2);
            Libc.posix_spawn_file_actions_addchdir_np(actions, strings.Add(cwd));

            var path = strings.Add(argv[0]);
            var argvPtr = strings.AddArray(argv);
            var envPtr = strings.AddArray(env);
            var (pid, status) = reaper.Spawn(() =>
            {
                var rc = Libc.posix_spawn(out var child, path, actions, attr, argvPtr, envPtr);
                if (rc != 0)
                {
                    throw new SyscallException("posix_spawn", rc, argv[0]);
                }

                return child;
            });
            CloseAll(p0[0], p1[1], p2[1]);
            return new ChildProcess(pid, status, p0[1], p1[0], p2[0]);
        }
        catch
        {
            CloseAll(p0[0], p0[1], p1[0], p1[1], p2[0], p2[1]);
            throw;
        }
        finally
        {
            Libc.posix_spawn_file_actions_destroy(actions);
            Libc.posix_spawnattr_destroy(attr);
            NativeMemory.Free(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(all);
            NativeMemory.Free(none);
        }
    }

    /// <summary>SIGKILL to the whole process group (the session the child leads).</summary>
    public void KillGroup()
    {
        Libc.kill(-Pid, Libc.SIGKILL);
        Libc.kill(Pid, Libc.SIGKILL);
    }

    private static void CloseAll(params int[] fds)
    {
        foreach (var fd in fds)
        {
            Libc.close(fd);
        }
    }

    /// <summary>NUL-terminated UTF-8 strings and NULL-terminated pointer arrays in native memory.</summary>
    private sealed class NativeStrings : IDisposable
    {
        private readonly List<nint> _allocations = [];

        public byte* Add(string value)
        {
            if (value.Contains('\0', StringComparison.Ordinal))
            {
                throw new ArgumentException("strings passed to a process must not contain NUL");
            }

            var bytes = Encoding.UTF8.GetBytes(value);
            var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
            bytes.CopyTo(new Span<byte>(p, bytes.Length));
            p[bytes.Length] = 0;
            _allocations.Add((nint)p);
            return p;
        }

        public byte** AddArray(IReadOnlyList<string> values)
        {
            var array = (byte**)NativeMemory.Alloc((nuint)(values.Count + 1), (nuint)sizeof(nint));
            _allocations.Add((nint)array);
            for (var i = 0; i < values.Count; i++)
            {
                array[i] = Add(values[i]);
            }

            array[values.Count] = null;
            return array;
        }

        public void Dispose()
        {
            foreach (var p in _allocations)
            {
                NativeMemory.Free((void*)p);
            }
        }
    }
}
