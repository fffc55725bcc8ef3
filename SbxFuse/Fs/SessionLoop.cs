using System.Diagnostics;
using System.Runtime.InteropServices;
using Hive.Interop;
using Hive.Interop.Fuse;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// Our own request loop over libfuse's session API, in place of <c>fuse_loop_mt</c>.
/// Why by hand: on this kind of VM every sleep/wake-up of a thread costs tens of microseconds
/// (context switches go through the hypervisor), and a FUSE round trip has two of them. So the
/// device is non-blocking, and one worker at a time keeps polling it for a short while after the
/// last request (<see cref="SpinBudget"/>): during a burst of small operations (cp -r, git, tar)
/// the next request is picked up without a wake-up. Idle workers block in their own epoll set
/// with EPOLLEXCLUSIVE, so a request wakes one thread, not all of them. The spinner gives up
/// after the budget, so an idle mount costs no CPU.
/// </summary>
internal static unsafe class SessionLoop
{
    private static readonly long SpinBudget = Stopwatch.Frequency / 20_000; // 50 µs
    private static int _spinner;


    public static int Run(void* session, int workers)
    {
        var fd = LibFuse.fuse_session_fd(session);
        Libc.SetNonBlocking(fd);
        var handle = (nint)session;
        var threads = Enumerable.Range(0, workers)
            .Select(i => new Thread(() => Worker((void*)handle, fd), 256 * 1024) { Name = $"fuse-{i}", IsBackground = true })
            .ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        return 0;
    }

    private static void Worker(void* session, int fd)
    {
        var epoll = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        var registration = new Libc.EpollEvent { Events = Libc.EPOLLIN | Libc.EPOLLEXCLUSIVE };
        if (epoll < 0 || Libc.epoll_ctl(epoll, Libc.EPOLL_CTL_ADD, fd, &registration) != 0)
        {
            throw SyscallException.FromLastError("epoll");
        }

        var buffer = default(FuseBuf);
        var spinning = false;
        long spinUntil = 0;
        var ready = default(Libc.EpollEvent);
        try
        {
            while (LibFuse.fuse_session_exited(session) == 0)
            {
                var rc = LibFuse.fuse_session_receive_buf(session, &buffer);
                if (rc > 0)
                {
                    LibFuse.fuse_session_process_buf(session, &buffer);
                    if (spinning)
                    {
                        spinUntil = Stopwatch.GetTimestamp() + SpinBudget;
                    }

                    continue;
                }

                if (rc == 0 || (rc != -Libc.EAGAIN && rc != -Libc.EINTR))
                {
                    break; // unmounted (ENODEV) or the device failed
                }

                if (rc == -Libc.EINTR)
                {
                    continue;
                }

                if (!spinning && Interlocked.CompareExchange(ref _spinner, 1, 0) == 0)
                {
                    spinning = true;
                    spinUntil = Stopwatch.GetTimestamp() + SpinBudget;
                }

                if (spinning && Stopwatch.GetTimestamp() < spinUntil)
                {
                    Thread.SpinWait(8);
                    continue;
                }

                if (spinning)
                {
                    spinning = false;
                    Volatile.Write(ref _spinner, 0);
                }

                Libc.epoll_wait(epoll, &ready, 1, 500);
            }
        }
        finally
        {
            if (spinning)
            {
                Volatile.Write(ref _spinner, 0);
            }

            NativeMemory.Free(buffer.Mem);
            Libc.close(epoll);
        }
    }
}
