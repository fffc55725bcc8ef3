using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Hive.Interop;

namespace Hive.Agent.Processes;

/// <summary>
/// One thread, created at start-up, moves all command output and input through epoll. Exec must
/// not need a new thread: inside a sandbox whose pids limit a fork bomb has exhausted, thread
/// creation fails, and the agent must still answer (and kill the bomb on timeout). .NET has no
/// readiness-based async I/O for pipes on Unix, hence this small hand-written loop.
/// </summary>
/// <remarks>
/// Every epoll_ctl and close happens on the pump thread (requests arrive through a queue and an
/// eventfd), so a descriptor is never closed and reused while the loop still refers to it.
/// </remarks>
internal sealed unsafe class PipePump
{
    private const int MaxEvents = 64;
    private readonly int _epoll;
    private readonly int _wake;
    private readonly ConcurrentQueue<Action> _requests = new();
    private readonly Dictionary<int, Registration> _registrations = [];
    private readonly byte[] _buffer = new byte[64 * 1024];

    public PipePump()
    {
        _epoll = Libc.epoll_create1(Libc.EPOLL_CLOEXEC);
        _wake = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (_epoll < 0 || _wake < 0)
        {
            throw SyscallException.FromLastError("epoll_create1/eventfd");
        }

        Add(_wake, Libc.EPOLLIN);
        new Thread(Run) { IsBackground = true, Name = "pipe-pump" }.Start();
    }

    /// <summary>Reads <paramref name="fd"/> until EOF, handing data to <paramref name="onData"/>; the pump closes it.</summary>
    public void Read(int fd, Action<ReadOnlySpan<byte>> onData, Action onEnd) =>
        Post(() => Register(fd, new Registration { OnData = onData, OnEnd = onEnd }, Libc.EPOLLIN));

    /// <summary>Writes all of <paramref name="data"/> to <paramref name="fd"/> (or until the reader goes away), then closes it.</summary>
    public void Write(int fd, ReadOnlyMemory<byte> data, Action onEnd) =>
        Post(() => Register(fd, new Registration { Pending = data, OnEnd = onEnd }, Libc.EPOLLOUT));

    /// <summary>
    /// Stops reading or writing <paramref name="fd"/> and closes it (for output held open by background
    /// processes). Output already in the pipe is read first — what the command wrote before it exited
    /// must not be lost because the pump thread was slow to get to it — but at most
    /// <see cref="AbandonReads"/> buffers, so a background writer that never stops cannot hold the pump.
    /// </summary>
    public void Abandon(int fd) => Post(() =>
    {
        if (_registrations.TryGetValue(fd, out var registration))
        {
            if (registration.OnData is not null)
            {
                Drain(fd, registration, AbandonReads);
            }

            if (_registrations.ContainsKey(fd))
            {
                Finish(fd);
            }
        }
    });

    /// <summary>Buffers read from a pipe that is being abandoned: 16 × 64 KiB, the default pipe capacity many times over.</summary>
    private const int AbandonReads = 16;

    private void Post(Action request)
    {
        _requests.Enqueue(request);
        ulong one = 1;
        Libc.write(_wake, (byte*)&one, sizeof(ulong));
    }

    private void Register(int fd, Registration registration, uint events)
    {
        Libc.SetNonBlocking(fd);
        _registrations[fd] = registration;
        Add(fd, events);
    }

    private void Add(int fd, uint events)
    {
        var ev = new Libc.EpollEvent { Events = events, Data = (ulong)fd };
        if (Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_ADD, fd, &ev) != 0)
        {
            throw SyscallException.FromLastError("epoll_ctl(ADD)");
        }
    }

    private void Run()
    {
        var events = stackalloc Libc.EpollEvent[MaxEvents];
        while (true)
        {
            var n = Libc.epoll_wait(_epoll, events, MaxEvents, -1);
            if (n < 0)
            {
                continue; // EINTR
            }

            for (var i = 0; i < n; i++)
            {
                var fd = (int)events[i].Data;
                if (fd == _wake)
                {
                    ulong count;
                    Libc.read(_wake, (byte*)&count, sizeof(ulong));
                    while (_requests.TryDequeue(out var request))
                    {
                        try
                        {
                            request();
                        }
                        catch (SyscallException)
                        {
                            // A descriptor that cannot be registered: its callbacks never fire; the exec's own deadline handles it.
                        }
                    }
                }
                else if (_registrations.TryGetValue(fd, out var registration))
                {
                    if (registration.OnData is not null)
                    {
                        Drain(fd, registration, int.MaxValue);
                    }
                    else
                    {
                        Fill(fd, registration);
                    }
                }
            }
        }
    }

    private void Drain(int fd, Registration registration, int maxReads)
    {
        fixed (byte* buffer = _buffer)
        {
            for (var reads = 0; reads < maxReads; reads++)
            {
                var n = Libc.read(fd, buffer, (nuint)_buffer.Length);
                if (n > 0)
                {
                    registration.OnData!(new ReadOnlySpan<byte>(buffer, (int)n));
                    continue;
                }

                if (n < 0 && Marshal.GetLastPInvokeError() is Libc.EAGAIN or Libc.EINTR)
                {
                    return;
                }

                Finish(fd); // EOF or error
                return;
            }
        }
    }

    private void Fill(int fd, Registration registration)
    {
        while (!registration.Pending.IsEmpty)
        {
            nint n;
            fixed (byte* data = registration.Pending.Span)
            {
                n = Libc.write(fd, data, (nuint)registration.Pending.Length);
            }

            if (n > 0)
            {
                registration.Pending = registration.Pending[(int)n..];
                continue;
            }

            if (n < 0 && Marshal.GetLastPInvokeError() is Libc.EAGAIN or Libc.EINTR)
            {
                return;
            }

            break; // EPIPE: the command does not read its input
        }

        Finish(fd);
    }

    private void Finish(int fd)
    {
        var registration = _registrations[fd];
        _registrations.Remove(fd);
        var ev = default(Libc.EpollEvent);
        Libc.epoll_ctl(_epoll, Libc.EPOLL_CTL_DEL, fd, &ev);
        Libc.close(fd);
        registration.OnEnd();
    }

    private sealed class Registration
    {
        public Action<ReadOnlySpan<byte>>? OnData { get; init; }

        public ReadOnlyMemory<byte> Pending { get; set; }

        public required Action OnEnd { get; init; }
    }
}
