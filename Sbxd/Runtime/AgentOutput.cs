using Hive.Interop;
using Microsoft.Win32.SafeHandles;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// hive-agent's stdout and stderr (and runc's, which hands its own on): a FIFO in the state dir that
/// Sbxd drains into <c>agent.log</c>, capped at <see cref="MaxBytes"/> and rotated once to
/// <c>agent.log.1</c>. The agent never holds a host file: before, its stdout was <c>agent.log</c>
/// itself, so anything that reached the descriptor (<c>echo … &gt;&gt; /proc/1/fd/1</c>) grew a host file
/// without bound.
/// </summary>
/// <remarks>
/// <para>Sbxd opens the FIFO for reading <em>and</em> writing: that open never waits for a peer, the
/// pipe never reports end-of-file between two agents, and each container start gets a fresh write
/// end while the read end stays. A restarted Sbxd opens the same FIFO and reads on where its
/// predecessor stopped (the kernel keeps the pipe while the agent holds its end).</para>
/// <para>While no Sbxd runs, the pipe has no reader and the agent's writes fail with EPIPE; the agent
/// ignores SIGPIPE (the .NET runtime does) and its console writer drops a line that meets EPIPE, so
/// it neither blocks nor dies. While Sbxd runs, this pump drains the pipe continuously; should the
/// disk refuse the log, lines are dropped, never left in the pipe.</para>
/// </remarks>
internal sealed partial class AgentOutput : IDisposable
{
    /// <summary>agent.log's cap; with agent.log.1, at most twice this on disk.</summary>
    public const long MaxBytes = 4L << 20;

    private const int PipeBytes = 1 << 20;

    private readonly SandboxLayout _layout;
    private readonly SafeFileHandle _pipe;
    private readonly FileStream _stream;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private volatile bool _stopping;
    private volatile bool _failed;
    private int _inFlight;

    private AgentOutput(SandboxLayout layout, SafeFileHandle pipe, ILogger logger)
    {
        _layout = layout;
        _pipe = pipe;
        _stream = new FileStream(pipe, FileAccess.ReadWrite, bufferSize: 0);
        _logger = logger;
        _thread = new Thread(Pump) { IsBackground = true, Name = "agent-output" };
        _thread.Start();
    }

    /// <summary>Opens (creating it if needed) the sandbox's agent FIFO and starts draining it.</summary>
    public static AgentOutput Open(SandboxLayout layout, ILogger logger)
    {
        SafeFileHandle pipe;
        try
        {
            pipe = Libc.OpenFifo(layout.AgentFifo, Libc.O_RDWR);
        }
        catch (IOException)
        {
            // Missing, or something else in its place (a state dir from before the FIFO): make it.
            File.Delete(layout.AgentFifo);
            if (Libc.mkfifo(layout.AgentFifo, Convert.ToUInt32("600", 8)) != 0)
            {
                throw SyscallException.FromLastError("mkfifo", layout.AgentFifo);
            }

            pipe = Libc.OpenFifo(layout.AgentFifo, Libc.O_RDWR);
        }

        // A roomier pipe rides out a slow disk without the agent's logger waiting (best effort).
        Libc.TrySetPipeSize(pipe, PipeBytes);
        return new AgentOutput(layout, pipe, logger);
    }

    /// <summary>True once the pump has given up (it logged why); a new <see cref="Open"/> starts over.</summary>
    public bool Failed => _failed;

    /// <summary>
    /// A write end for the next container start: runc passes it on as the agent's stdout and stderr.
    /// (Opening a FIFO for writing waits for a reader; while not <see cref="Failed"/>, this one is.)
    /// </summary>
    public SafeFileHandle OpenWriter() => Libc.OpenFifo(_layout.AgentFifo, Libc.O_WRONLY);

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) until everything written to the pipe so far is in
    /// agent.log — for error messages that quote its last lines.
    /// </summary>
    /// <remarks>
    /// The pump marks a batch in flight before it takes bytes out of the pipe, so an empty pipe seen
    /// first and no batch in flight seen afterwards means every earlier byte has been written.
    /// </remarks>
    public void WaitDrained(TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        try
        {
            while (Environment.TickCount64 < deadline && !_failed)
            {
                if (Libc.BytesAvailable(_pipe) == 0 && Volatile.Read(ref _inFlight) == 0)
                {
                    return;
                }

                Thread.Sleep(10);
            }
        }
        catch (ObjectDisposedException)
        {
            // The pump failed meanwhile: nothing will be drained any more.
        }
    }

    public void Dispose()
    {
        _stopping = true;
        try
        {
            _stream.Write("\n"u8); // wakes the pump
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // The pump failed and closed the pipe already.
        }

        _thread.Join(TimeSpan.FromSeconds(5));
        _stream.Dispose();
    }

    private void Pump()
    {
        var buffer = new byte[64 * 1024];
        FileStream? log = null;
        try
        {
            while (!_stopping)
            {
                Libc.WaitReadable(_pipe);
                Interlocked.Exchange(ref _inFlight, 1);
                try
                {
                    if (_stopping)
                    {
                        return;
                    }

                    var read = _stream.Read(buffer);
                    log = Append(log, buffer.AsSpan(0, read));
                }
                finally
                {
                    Volatile.Write(ref _inFlight, 0);
                }
            }
        }
        catch (Exception ex)
        {
            // The pipe itself failed (it never does short of Sbxd closing it): nothing more to drain.
            // A thread's last chance: whatever it was, it must not take Sbxd down with it. Without a
            // reader the agent's writes fail with EPIPE instead of filling the pipe and waiting.
            if (!_stopping)
            {
                LogPumpFailed(_logger, _layout.Name, ex.Message);
                _failed = true;
                _stream.Dispose();
            }
        }
        finally
        {
            log?.Dispose();
        }
    }

    /// <summary>Appends to agent.log, rotating first when the chunk would take it past the cap; drops the chunk if the disk refuses it.</summary>
    private FileStream? Append(FileStream? log, ReadOnlySpan<byte> chunk)
    {
        try
        {
            log ??= new FileStream(_layout.AgentLog, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
            if (log.Length > 0 && log.Length + chunk.Length > MaxBytes)
            {
                log.Dispose();
                log = null;
                File.Move(_layout.AgentLog, _layout.AgentLog + ".1", overwrite: true);
                log = new FileStream(_layout.AgentLog, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
            }

            log.Write(chunk);
            return log;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            log?.Dispose();
            LogWriteFailed(_logger, _layout.Name, chunk.Length, ex.Message);
            return null;
        }
    }

    [LoggerMessage(EventId = 60, Level = LogLevel.Warning, Message = "Sandbox {Sandbox}: {Bytes} bytes of the agent's output dropped: {Reason}")]
    private static partial void LogWriteFailed(ILogger logger, string sandbox, int bytes, string reason);

    [LoggerMessage(EventId = 61, Level = LogLevel.Error, Message = "Sandbox {Sandbox}: reading the agent's output failed: {Reason}")]
    private static partial void LogPumpFailed(ILogger logger, string sandbox, string reason);
}
