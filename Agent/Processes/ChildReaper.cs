using System.Collections.Concurrent;
using Hive.Interop;

namespace Hive.Agent.Processes;

/// <summary>
/// The init's duty: collect every child that exits — ours and orphans re-parented to PID 1 — so
/// no zombie accumulates. One thread blocks in waitpid(-1); statuses of children we spawned are
/// delivered to their waiters, orphans are simply reaped.
/// </summary>
/// <remarks>
/// Spawn and registration happen under <see cref="_gate"/>, and the reaper takes the same lock
/// before looking a pid up, so a child that exits instantly is never mistaken for an orphan.
/// </remarks>
internal sealed class ChildReaper
{
    private readonly object _gate = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<int>> _waiters = new();
    private readonly SemaphoreSlim _childrenExist = new(0);
    private readonly Thread _thread;

    public ChildReaper()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "child-reaper" };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="spawn"/> (which returns a pid) and returns a task for its wait status.</summary>
    public (int Pid, Task<int> Status) Spawn(Func<int> spawn)
    {
        var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        int pid;
        lock (_gate)
        {
            pid = spawn();
            _waiters[pid] = tcs;
        }

        _childrenExist.Release();
        return (pid, tcs.Task);
    }

    private void Run()
    {
        while (true)
        {
            var pid = Libc.waitpid(-1, out var status, 0);
            if (pid > 0)
            {
                lock (_gate)
                {
                    if (_waiters.TryRemove(pid, out var tcs))
                    {
                        tcs.TrySetResult(status);
                    }
                }

                continue;
            }

            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR)
            {
                continue;
            }

            // ECHILD: nothing to wait for until the next spawn (orphans only ever descend from our children).
            _childrenExist.Wait(TimeSpan.FromSeconds(1));
        }
    }
}
