using System.Diagnostics;
using Google.Protobuf;
using Hive.Agent.Processes;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Agent.Exec;

/// <summary>
/// Exec: <c>/bin/sh -c command</c> in a new session, stdout/stderr captured (bounded), a timeout
/// or a cancelled call SIGKILLs the whole process group.
/// </summary>
internal sealed class ExecService(ChildReaper reaper, PipePump pump, AgentEnvironment environment)
{
    public const long DefaultMaxOutput = 1024 * 1024;

    /// <summary>After the command exits, how long to keep reading pipes that background children hold open.</summary>
    private static readonly TimeSpan DrainAfterExit = TimeSpan.FromMilliseconds(100);

    /// <summary>How long to wait for the pump to take what abandoned pipes already hold.</summary>
    private static readonly TimeSpan AbandonedReadersWait = TimeSpan.FromSeconds(5);

    public Task<ExecResponse> ExecAsync(ExecRequest request, CallContext context) => RunAsync(request, context.CancellationToken);

    /// <summary>Runs one command (also for the MCP <c>exec</c> tool); cancelling kills its process group.</summary>
    public async Task<ExecResponse> RunAsync(ExecRequest request, CancellationToken cancellationToken)
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

        if (!File.Exists("/bin/sh"))
        {
            throw new RpcException(StatusCode.FailedPrecondition, "this image has no /bin/sh");
        }

        var limit = request.MaxOutputBytes == 0 ? DefaultMaxOutput : (long)request.MaxOutputBytes;
        var stopwatch = Stopwatch.StartNew();
        ChildProcess child;
        try
        {
            child = ChildProcess.Start(reaper, ["/bin/sh", "-c", OomScore.ShellPrologue + request.Command], environment.ForChild(request.Env), cwd);
        }
        catch (Hive.Interop.SyscallException ex) when (ex.Errno == Hive.Interop.Libc.EAGAIN)
        {
            // Like a shell that cannot fork: a result, not a transport failure.
            return new ExecResponse
            {
                ExitCode = 126,
                Stderr = ByteString.CopyFromUtf8("hive: cannot start the command: the sandbox's process limit (pids) is reached\n"),
                DurationUs = (ulong)(stopwatch.Elapsed.Ticks / 10),
            };
        }
        catch (Hive.Interop.SyscallException ex)
        {
            throw new RpcException(StatusCode.Internal, "could not start the command: " + ex.Message);
        }

        OomScore.MakeKillable(child.Pid);
        var stdout = new OutputCollector(limit);
        var stderr = new OutputCollector(limit);
        pump.Read(child.Stdout, stdout.Append, stdout.End);
        pump.Read(child.Stderr, stderr.Append, stderr.End);
        if (request.Stdin.IsEmpty)
        {
            Hive.Interop.Libc.close(child.Stdin);
        }
        else
        {
            pump.Write(child.Stdin, request.Stdin.Memory, static () => { });
        }

        var timedOut = false;
        using var timeout = request.TimeoutMs > 0 ? new CancellationTokenSource(TimeSpan.FromMilliseconds(request.TimeoutMs)) : new CancellationTokenSource();
        using var kill = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
        int status;
        await using (kill.Token.Register(() =>
        {
            timedOut = timeout.IsCancellationRequested;
            child.KillGroup();
        }))
        {
            status = await child.Status;
        }

        stopwatch.Stop();

        // Background children may keep the pipes open: give them a moment, then stop reading — after
        // the pump has taken what is already in the pipes (it ends both collectors when it is done).
        var readers = Task.WhenAll(stdout.Ended, stderr.Ended);
        if (await Task.WhenAny(readers, Task.Delay(DrainAfterExit)) != readers)
        {
            pump.Abandon(child.Stdout);
            pump.Abandon(child.Stderr);
            await Task.WhenAny(readers, Task.Delay(AbandonedReadersWait)); // bounded: a descriptor the pump never registered never ends
        }

        var signal = Hive.Interop.Libc.Exited(status) ? 0 : Hive.Interop.Libc.TermSignal(status);
        return new ExecResponse
        {
            ExitCode = signal == 0 ? Hive.Interop.Libc.ExitStatus(status) : 128 + signal,
            Signal = signal,
            TimedOut = timedOut,
            Stdout = ByteString.CopyFrom(stdout.Result("stdout")),
            Stderr = ByteString.CopyFrom(stderr.Result("stderr")),
            StdoutTruncated = stdout.Truncated,
            StderrTruncated = stderr.Truncated,
            StdoutBytes = (ulong)stdout.Total,
            StderrBytes = (ulong)stderr.Total,
            DurationUs = (ulong)(stopwatch.Elapsed.Ticks / 10),
            Pid = child.Pid,
        };
    }
}
