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

        using var request = new SpawnRequest().NewSession().Dup2(p0[0], 0).Dup2(p1[1], 1).Dup2(p2[1], 2).Chdir(cwd);
        try
        {
            var (pid, status) = reaper.Spawn(request.Prepare(argv, env));
            CloseAll(p0[0], p1[1], p2[1]);
            return new ChildProcess(pid, status, p0[1], p1[0], p2[0]);
        }
        catch
        {
            CloseAll(p0[0], p0[1], p1[0], p1[1], p2[0], p2[1]);
            throw;
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
}
