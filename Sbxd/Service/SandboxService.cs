using System.Globalization;
using Hive.Protos.V1;
using Hive.Sbxd.Events;
using Hive.Sbxd.Runtime;
using Hive.Wire;

namespace Hive.Sbxd.Service;

/// <summary>
/// hive.v1.Sandbox for the Controller: status from Sbxd's own view and the cgroups; exec and files
/// forwarded to the agent (streams stay streams), with the facts only the host can see added.
/// </summary>
internal sealed partial class SandboxService(SandboxLayout layout, SandboxRuntime runtime, GrpcChannel agent, EventIngest events, IHostApplicationLifetime lifetime, ILogger<SandboxService> logger)
{
    private const string Agent = "/hive.v1.Agent/";
    private readonly Lock _gate = new();
    private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;
    private SandboxState _state = SandboxState.Creating;
    private string _error = string.Empty;
    private bool _containerExited;

    /// <summary>
    /// Serialises bringing the sandbox up (start-up, watchdog restarts) with destroying it, so a
    /// restart can never resurrect a container that Destroy is tearing down.
    /// </summary>
    public SemaphoreSlim Lifecycle { get; } = new(1, 1);

    /// <summary>Set once Destroy has begun; nothing starts again after that.</summary>
    public bool Destroying { get; private set; }
    private long _commands = ReadCommands(layout.CommandsFile);

    public void SetState(SandboxState state, string error = "")
    {
        lock (_gate)
        {
            _state = state;
            _error = error;
            _containerExited = false;
        }
    }

    public SandboxState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>True when the sandbox failed because its container died (the watchdog keeps trying), not at first start.</summary>
    public bool ContainerExited
    {
        get
        {
            lock (_gate)
            {
                return _containerExited;
            }
        }
    }

    public void MarkContainerExited()
    {
        lock (_gate)
        {
            _containerExited = true;
        }
    }

    public Task<SandboxStatus> GetStatusAsync(GetStatusRequest request, CallContext context)
    {
        SandboxState state;
        string error;
        lock (_gate)
        {
            state = _state;
            error = _error;
        }

        if (state == SandboxState.Running && !runtime.ContainerAlive())
        {
            // The watchdog starts the container again (Failed only if that fails): until it has, the
            // sandbox is restarting, not failed — the Controller must not mark it failed for the moment
            // between the init's exit and the watchdog's next look.
            state = SandboxState.Creating;
            error = "restarting: the container's init (hive-agent) exited";
        }

        var status = new SandboxStatus
        {
            Name = layout.Name,
            State = state,
            Error = error,
            SbxdPid = Environment.ProcessId,
            Ip = runtime.Network.SandboxIp,
            ContainerPid = runtime.ContainerPid,
            CommandsExecuted = (ulong)Interlocked.Read(ref _commands),
            StartedAtUnixMs = _started.ToUnixTimeMilliseconds(),
            OomKills = runtime.Cgroups.OomKills(),
            MemoryUsageBytes = runtime.Cgroups.MemoryUsage(),
            CpuUsageNs = runtime.Cgroups.CpuUsageNs(),
            PidsCurrent = runtime.Cgroups.PidsCurrent(),
            IdBase = runtime.UserNamespace.Range?.Base ?? 0,
        };
        if (runtime.Disk.Usage() is { } disk)
        {
            (status.DiskUsedBytes, status.DiskLimitBytes, status.DiskUsedInodes, status.DiskLimitInodes) = disk;
        }

        status.Workspaces.AddRange(runtime.Workspaces.DiskUsage());
        return Task.FromResult(status);
    }

    public async Task<ExecResponse> ExecAsync(ExecRequest request, CallContext context)
    {
        RequireRunning();
        var oomBefore = runtime.Cgroups.OomKills();
        var response = await agent.UnaryAsync<ExecRequest, ExecResponse>(Agent + "Exec", request, Forward(context));
        response.OomKilled = runtime.Cgroups.OomKills() > oomBefore;
        var count = Interlocked.Increment(ref _commands);
        File.WriteAllText(layout.CommandsFile, count.ToString(CultureInfo.InvariantCulture)); // sync: an async file write costs a thread-pool hop
        return response;
    }

    public async Task ReadFileAsync(ReadFileRequest request, IServerStreamWriter<FileChunk> writer, CallContext context)
    {
        RequireRunning();
        await foreach (var chunk in agent.ServerStreamingAsync<ReadFileRequest, FileChunk>(Agent + "ReadFile", request, Forward(context)))
        {
            await writer.WriteAsync(chunk, context.CancellationToken);
        }
    }

    public Task<WriteFileResponse> WriteFileAsync(IAsyncEnumerable<WriteFileRequest> requests, CallContext context)
    {
        RequireRunning();
        return agent.ClientStreamingAsync<WriteFileRequest, WriteFileResponse>(Agent + "WriteFile", requests, Forward(context));
    }

    public Task<ListFilesResponse> ListFilesAsync(ListFilesRequest request, CallContext context)
    {
        RequireRunning();
        return agent.UnaryAsync<ListFilesRequest, ListFilesResponse>(Agent + "ListFiles", request, Forward(context));
    }

    public async Task<DestroyResponse> DestroyAsync(DestroyRequest request, CallContext context)
    {
        await Lifecycle.WaitAsync(context.CancellationToken);
        Destroying = true; // the lifecycle lock is never released again: this Sbxd only exits from here
        SetState(SandboxState.Stopped, "destroying");
        LogDestroying(logger, layout.Name);
        await runtime.TearDownAsync(CancellationToken.None, () => RecordDestroyedAsync(events));

        // Reply first, then exit: the Controller waits for this process to go away.
        _ = Task.Delay(TimeSpan.FromMilliseconds(200)).ContinueWith(_ => lifetime.StopApplication(), TaskScheduler.Default);
        return new DestroyResponse { Destroyed = true };
    }

    /// <summary>
    /// The last durable event (the log is on the host; the Controller reads it directly and uses
    /// this as its limit and wake-up): sent now, then after every commit, coalesced.
    /// </summary>
    public async Task WatchEventsAsync(WatchEventsRequest request, IServerStreamWriter<EventsCommitted> writer, CallContext context)
    {
        var sent = ulong.MaxValue;
        while (!context.CancellationToken.IsCancellationRequested)
        {
            var next = events.NextCommit;
            var last = events.LastSeq;
            if (last != sent)
            {
                await writer.WriteAsync(new EventsCommitted { LastSeq = last }, context.CancellationToken);
                sent = last;
            }

            try
            {
                await next.WaitAsync(TimeSpan.FromSeconds(15), context.CancellationToken);
            }
            catch (TimeoutException)
            {
                await writer.WriteAsync(new EventsCommitted { LastSeq = events.LastSeq }, context.CancellationToken); // keep-alive
                sent = events.LastSeq;
            }
        }
    }

    /// <summary>Spools drained (SbxFuse has unmounted by now), then lifecycle.destroyed: the log's last word.</summary>
    public static async Task RecordDestroyedAsync(EventIngest events)
    {
        await events.FlushAsync(CancellationToken.None);
        await events.RecordAsync(EventIngest.Lifecycle("lifecycle.destroyed", "sandbox destroyed; its event log is kept until retention removes it"));
    }

    /// <summary>Hot reload of one workspace's ACLs: stored in the spec (so restarts keep them) and pushed to its SbxFuse.</summary>
    public async Task<UpdateAclsResponse> UpdateAclsAsync(UpdateAclsRequest request, CallContext context)
    {
        await Lifecycle.WaitAsync(context.CancellationToken);
        try
        {
            var index = layout.Spec.Mounts.Select((m, i) => (m, i)).FirstOrDefault(x => x.m.Mount == request.Mount, (null!, -1)).Item2;
            if (index < 0)
            {
                throw new RpcException(StatusCode.NotFound, $"no workspace is mounted at '{request.Mount}'");
            }

            // On record before it takes effect: a change that cannot be audited is not made.
            var rules = System.Text.Json.JsonSerializer.Serialize(request.Rules.Select(r => new Dictionary<string, string> { ["path"] = r.Path, ["access"] = r.Access }));
            try
            {
                await events.RecordAsync(new Event { Kind = "policy.acl", Policy = new PolicyEvent { Target = "fs:" + request.Mount, Actor = request.Actor, Rules = rules } });
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                throw new RpcException(StatusCode.Unavailable, "the ACL change cannot be recorded in the event log: " + ex.Message);
            }

            var applied = await runtime.Workspaces.SetAclsAsync(index, request.Rules, context.CancellationToken);
            return new UpdateAclsResponse { Applied = applied };
        }
        finally
        {
            Lifecycle.Release();
        }
    }

    /// <summary>Hot reload of the egress policy: on record first, then into the spec and the live SbxProxy.</summary>
    public async Task<UpdateEgressResponse> UpdateEgressAsync(UpdateEgressRequest request, CallContext context)
    {
        if (request.EgressJson.Length > 0)
        {
            try
            {
                Hive.Policy.Net.EgressPolicy.Parse(request.EgressJson);
            }
            catch (Hive.Policy.Net.EgressPolicyException ex)
            {
                throw new RpcException(StatusCode.InvalidArgument, ex.Message);
            }
        }

        await Lifecycle.WaitAsync(context.CancellationToken);
        try
        {
            if (!runtime.Network.Enabled)
            {
                throw new RpcException(StatusCode.FailedPrecondition, "the sandbox's network is 'none': it has no egress to govern");
            }

            try
            {
                await events.RecordAsync(new Event { Kind = "policy.egress", Policy = new PolicyEvent { Target = "egress", Actor = request.Actor, Rules = request.EgressJson.Length > 0 ? request.EgressJson : "every host" } });
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                throw new RpcException(StatusCode.Unavailable, "the egress change cannot be recorded in the event log: " + ex.Message);
            }

            var applied = await runtime.Network.SetPolicyAsync(request.EgressJson, context.CancellationToken);
            return new UpdateEgressResponse { Applied = applied };
        }
        finally
        {
            Lifecycle.Release();
        }
    }

    /// <summary>
    /// The sandbox's event budget: read it, or change it (on record, into the spec so restarts keep
    /// it, then in effect: raising it above what the log holds lets refused operations happen again).
    /// </summary>
    public async Task<EventBudgetStatus> EventBudgetAsync(EventBudgetRequest request, CallContext context)
    {
        if (!request.Set)
        {
            return events.BudgetStatus();
        }

        if (request.Bytes > long.MaxValue)
        {
            throw new RpcException(StatusCode.InvalidArgument, "the budget is out of range");
        }

        await Lifecycle.WaitAsync(context.CancellationToken);
        try
        {
            EventBudgetStatus status;
            try
            {
                status = await events.SetBudgetAsync((long)request.Bytes, request.Actor);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                throw new RpcException(StatusCode.Unavailable, "the budget change cannot be recorded in the event log: " + ex.Message);
            }

            layout.Spec.EventsBudgetBytes = request.Bytes;
            var temp = layout.SpecFile + ".new";
            await File.WriteAllBytesAsync(temp, Google.Protobuf.MessageExtensions.ToByteArray(layout.Spec), context.CancellationToken);
            File.Move(temp, layout.SpecFile, overwrite: true);
            return status;
        }
        finally
        {
            Lifecycle.Release();
        }
    }

    private void RequireRunning()
    {
        lock (_gate)
        {
            if (_state != SandboxState.Running)
            {
                throw new RpcException(StatusCode.Unavailable, $"sandbox is {_state.ToString().ToLowerInvariant()}{(_error.Length > 0 ? ": " + _error : string.Empty)}");
            }
        }
    }

    private static CallOptions Forward(CallContext context) =>
        new(context.Deadline is { } deadline ? deadline - DateTimeOffset.UtcNow : null, context.CancellationToken);

    private static long ReadCommands(string file)
    {
        try
        {
            return File.Exists(file) && long.TryParse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture, out var n) ? n : 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Destroying sandbox {Name}")]
    private static partial void LogDestroying(ILogger logger, string name);
}
