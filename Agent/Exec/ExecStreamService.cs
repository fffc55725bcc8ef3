using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Google.Protobuf;
using Hive.Agent.Processes;
using Hive.Protos.V1;
using Hive.Wire;
using Microsoft.Win32.SafeHandles;

namespace Hive.Agent.Exec;

/// <summary>
/// Streamed exec: output is sent as it is produced, stdin stays open for <see cref="InputAsync"/>.
/// Output is read by blocking reads into a bounded channel, so a slow reader slows the command
/// (its pipe fills) instead of growing the agent's memory.
/// </summary>
internal sealed class ExecStreamService(ChildReaper reaper, AgentEnvironment environment)
{
    private readonly ConcurrentDictionary<string, FileStream> _stdin = new(StringComparer.Ordinal);

    public async Task RunAsync(ExecRequest request, IServerStreamWriter<ExecStreamEvent> writer, CallContext context)
    {
        if (string.IsNullOrEmpty(request.Command))
        {
            throw new RpcException(StatusCode.InvalidArgument, "command is required");
        }

        var cwd = string.IsNullOrEmpty(request.Cwd) ? "/" : request.Cwd;
        if (!cwd.StartsWith('/') || !Directory.Exists(cwd))
        {
            throw new RpcException(StatusCode.InvalidArgument, $"working directory '{cwd}' does not exist");
        }

        var stopwatch = Stopwatch.StartNew();
        ChildProcess child;
        try
        {
            child = ChildProcess.Start(reaper, ["/bin/sh", "-c", OomScore.ShellPrologue + request.Command], environment.ForChild(request.Env), cwd);
        }
        catch (Hive.Interop.SyscallException ex)
        {
            throw new RpcException(ex.Errno == Hive.Interop.Libc.EAGAIN ? StatusCode.ResourceExhausted : StatusCode.Internal, "could not start the command: " + ex.Message);
        }

        OomScore.MakeKillable(child.Pid);
        var id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var stdin = new FileStream(new SafeFileHandle(child.Stdin, ownsHandle: true), FileAccess.Write, 1);
        _stdin[id] = stdin;
        if (!request.Stdin.IsEmpty)
        {
            await stdin.WriteAsync(request.Stdin.Memory, context.CancellationToken);
        }

        var output = Channel.CreateBounded<ExecStreamEvent>(new BoundedChannelOptions(64) { SingleWriter = false, SingleReader = true });
        var totals = new long[2];
        var stdout = PumpAsync(child.Stdout, data => new ExecStreamEvent { Stdout = data }, output.Writer, totals, 0);
        var stderr = PumpAsync(child.Stderr, data => new ExecStreamEvent { Stderr = data }, output.Writer, totals, 1);
        var timedOut = false;
        using var timeout = request.TimeoutMs > 0 ? new CancellationTokenSource(TimeSpan.FromMilliseconds(request.TimeoutMs)) : new CancellationTokenSource();
        using var kill = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, context.CancellationToken);
        using var killing = kill.Token.Register(() =>
        {
            timedOut = timeout.IsCancellationRequested;
            child.KillGroup();
        });
        var finished = Task.Run(async () =>
        {
            var status = await child.Status;
            await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(100)); // background children may hold the pipes
            output.Writer.TryComplete();
            return status;
        });

        try
        {
            await writer.WriteAsync(new ExecStreamEvent { Started = new ExecStarted { Id = id, Pid = child.Pid } }, context.CancellationToken);
            await foreach (var e in output.Reader.ReadAllAsync(context.CancellationToken))
            {
                await writer.WriteAsync(e, context.CancellationToken);
            }

            var status = await finished;
            var signal = Hive.Interop.Libc.Exited(status) ? 0 : Hive.Interop.Libc.TermSignal(status);
            await writer.WriteAsync(new ExecStreamEvent
            {
                Exit = new ExecResponse
                {
                    ExitCode = signal == 0 ? Hive.Interop.Libc.ExitStatus(status) : 128 + signal,
                    Signal = signal,
                    TimedOut = timedOut,
                    DurationUs = (ulong)(stopwatch.Elapsed.Ticks / 10),
                    StdoutBytes = (ulong)Interlocked.Read(ref totals[0]),
                    StderrBytes = (ulong)Interlocked.Read(ref totals[1]),
                    Pid = child.Pid,
                },
            }, context.CancellationToken);
        }
        finally
        {
            child.KillGroup(); // a dropped call takes the command with it
            if (_stdin.TryRemove(id, out var input))
            {
                await input.DisposeAsync();
            }
        }
    }

    public async Task<ExecInputResponse> InputAsync(ExecInputRequest request, CallContext context)
    {
        if (!_stdin.TryGetValue(request.Id, out var stdin))
        {
            throw new RpcException(StatusCode.NotFound, $"no running command '{request.Id}'");
        }

        try
        {
            if (!request.Data.IsEmpty)
            {
                await stdin.WriteAsync(request.Data.Memory, context.CancellationToken);
                await stdin.FlushAsync(context.CancellationToken);
            }

            if (request.Close && _stdin.TryRemove(request.Id, out var closing))
            {
                await closing.DisposeAsync();
            }
        }
        catch (IOException ex)
        {
            throw new RpcException(StatusCode.FailedPrecondition, "the command no longer reads its input: " + ex.Message);
        }

        return new ExecInputResponse();
    }

    /// <summary>Blocking reads of one output pipe into the channel, counting bytes into <paramref name="totals"/>[<paramref name="slot"/>].</summary>
    private static Task PumpAsync(int fd, Func<ByteString, ExecStreamEvent> wrap, ChannelWriter<ExecStreamEvent> output, long[] totals, int slot) =>
        Task.Factory.StartNew(async () =>
        {
            await using var pipe = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, 1);
            var buffer = new byte[32 * 1024];
            try
            {
                int read;
                while ((read = await pipe.ReadAsync(buffer)) > 0)
                {
                    Interlocked.Add(ref totals[slot], read);
                    await output.WriteAsync(wrap(ByteString.CopyFrom(buffer, 0, read)));
                }
            }
            catch (Exception ex) when (ex is IOException or ChannelClosedException or OperationCanceledException)
            {
                // The call ended: nobody reads any more.
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
}
