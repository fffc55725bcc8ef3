using Hive.Interop;
using Hive.Protos.V1;
using Hive.Sbxd.Events;
using Hive.Sbxd.Runtime;
using Hive.Sbxd.Service;
using Hive.Wire;

// hive-sbxd: owns one sandbox. Started by the Controller (setsid, detached) as
//   hive-sbxd --state-dir DIR            ensure the sandbox runs (adopting what exists) and serve DIR/sbxd.sock
//   hive-sbxd --state-dir DIR --destroy  tear everything down in the foreground; exit 0 when nothing remains
string? stateDir = null, ingestSpool = null, ingestLog = null;
var destroy = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--state-dir" when i + 1 < args.Length:
            stateDir = args[++i];
            break;
        case "--destroy":
            destroy = true;
            break;
        case "--ingest-only" when i + 2 < args.Length:
            // Benchmarks and tests: just the event pipeline (spool dir -> durable log) until SIGTERM.
            ingestSpool = args[++i];
            ingestLog = args[++i];
            break;
        case "-h" or "--help":
            Console.WriteLine("usage: hive-sbxd --state-dir DIR [--destroy]\n       hive-sbxd --ingest-only SPOOL_DIR LOG_DIR   (the event pipeline alone, for benchmarks)");
            return 0;
        default:
            Console.Error.WriteLine($"hive-sbxd: unexpected argument '{args[i]}'\nusage: hive-sbxd --state-dir DIR [--destroy]");
            return 2;
    }
}

if (ingestSpool is not null && ingestLog is not null)
{
    using var ingestLogger = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true));
    using var ingest = new EventIngest("ingest-only", ingestSpool, ingestLog, new Hive.Events.Log.EventLogOptions { MaxBytes = 0, MaxAge = TimeSpan.Zero }, ingestLogger.CreateLogger<EventIngest>());
    using var stop = new CancellationTokenSource();
    using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
    using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
    try
    {
        await Task.Delay(Timeout.Infinite, stop.Token);
    }
    catch (OperationCanceledException)
    {
    }

    await ingest.FlushAsync(CancellationToken.None);
    return 0;
}

if (stateDir is null)
{
    Console.Error.WriteLine("usage: hive-sbxd --state-dir DIR [--destroy]");
    return 2;
}

if (!File.Exists(Path.Combine(stateDir, "spec.pb")))
{
    if (destroy && !Directory.Exists(stateDir))
    {
        return 0; // nothing left to destroy
    }

    Console.Error.WriteLine($"hive-sbxd: {stateDir}/spec.pb not found");
    return 2;
}

var layout = SandboxLayout.Load(stateDir);
using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o =>
{
    o.SingleLine = true;
    o.TimestampFormat = "yyyy-MM-dd HH:mm:ss ";
}).SetMinimumLevel(LogLevel.Information));

if (destroy)
{
    // A Sbxd still serving this sandbox would restart what we tear down (its watchdog): end it first.
    if (File.Exists(layout.PidFile) && int.TryParse(File.ReadAllText(layout.PidFile).Trim(), out var servingPid) && servingPid != Environment.ProcessId &&
        ProcFs.IsAlive(servingPid) && File.ReadAllText($"/proc/{servingPid}/cmdline").Replace('\0', ' ').Contains(layout.StateDir, StringComparison.Ordinal))
    {
        Libc.kill(servingPid, Libc.SIGKILL);
        for (var wait = 0; wait < 250 && ProcFs.IsAlive(servingPid); wait++)
        {
            Thread.Sleep(20);
        }
    }

    try
    {
        // The spools may still hold events (Sbxd died before ingesting them): into the log first.
        EventIngest? ingest = null;
        try
        {
            ingest = new EventIngest(layout, loggerFactory.CreateLogger<EventIngest>());
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"hive-sbxd: the event log of {layout.Name} cannot be opened ({ex.Message}); tearing down without it");
        }

        using (ingest)
        {
            await new SandboxRuntime(layout, loggerFactory.CreateLogger<SandboxRuntime>())
                .TearDownAsync(CancellationToken.None, ingest is null ? null : () => Hive.Sbxd.Service.SandboxService.RecordDestroyedAsync(ingest));
        }

        return 0;
    }
    catch (Exception ex)
    {
        Console.Error.WriteLine($"hive-sbxd: destroy of {layout.Name} failed: {ex.Message}");
        return 1;
    }
}

// One Sbxd per sandbox: the lock is held for the life of the process (flock via FileShare.None).
FileStream lockFile;
try
{
    lockFile = new FileStream(layout.LockFile, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
}
catch (IOException)
{
    Console.Error.WriteLine($"hive-sbxd: another Sbxd already serves {layout.StateDir}");
    return 3;
}

using (lockFile)
{
    await File.WriteAllTextAsync(layout.PidFile, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
    var runtime = new SandboxRuntime(layout, loggerFactory.CreateLogger<SandboxRuntime>());
    using var events = new EventIngest(layout, loggerFactory.CreateLogger<EventIngest>());
    var eventLog = loggerFactory.CreateLogger("Hive.Sbxd.Events");
    async Task RecordAsync(Event e)
    {
        try
        {
            await events.RecordAsync(e);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            Log.EventLost(eventLog, layout.Name, e.Kind, ex.Message);
        }
    }

    if (!File.Exists(layout.CreatedMarker))
    {
        await RecordAsync(EventIngest.Lifecycle("lifecycle.created", $"image {layout.Spec.Image}, memory {layout.Spec.MemoryBytes} bytes, {layout.Spec.CpuMillis} millicores, {layout.Spec.Pids} pids"));
        await File.WriteAllTextAsync(layout.CreatedMarker, string.Empty);
    }

    await RecordAsync(EventIngest.Lifecycle("lifecycle.sbxd_started", "Sbxd serving the sandbox", "sbxd", Environment.ProcessId));
    using var agent = GrpcChannel.ForUnixSocket(layout.AgentSocket);
    var app = GrpcServer.Create(GrpcListen.UnixSocket(layout.SbxdSocket), b =>
    {
        b.Logging.SetMinimumLevel(LogLevel.Information);
        b.Logging.AddFilter("Microsoft", LogLevel.Warning);
    });
    var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
    var service = new SandboxService(layout, runtime, agent, events, lifetime, app.Services.GetRequiredService<ILogger<SandboxService>>());
    app.MapUnary<GetStatusRequest, SandboxStatus>("/hive.v1.Sandbox/GetStatus", service.GetStatusAsync);
    app.MapUnary<ExecRequest, ExecResponse>("/hive.v1.Sandbox/Exec", service.ExecAsync);
    app.MapServerStreaming<ReadFileRequest, FileChunk>("/hive.v1.Sandbox/ReadFile", service.ReadFileAsync);
    app.MapClientStreaming<WriteFileRequest, WriteFileResponse>("/hive.v1.Sandbox/WriteFile", service.WriteFileAsync);
    app.MapUnary<ListFilesRequest, ListFilesResponse>("/hive.v1.Sandbox/ListFiles", service.ListFilesAsync);
    app.MapUnary<DestroyRequest, DestroyResponse>("/hive.v1.Sandbox/Destroy", service.DestroyAsync);
    app.MapUnary<UpdateAclsRequest, UpdateAclsResponse>("/hive.v1.Sandbox/UpdateAcls", service.UpdateAclsAsync);
    app.MapServerStreaming<WatchEventsRequest, EventsCommitted>("/hive.v1.Sandbox/WatchEvents", service.WatchEventsAsync);
    app.MapUnary<UpdateEgressRequest, UpdateEgressResponse>("/hive.v1.Sandbox/UpdateEgress", service.UpdateEgressAsync);
    app.MapUnary<EventBudgetRequest, EventBudgetStatus>("/hive.v1.Sandbox/EventBudget", service.EventBudgetAsync);
    await app.StartAsync();

    var log = loggerFactory.CreateLogger("Hive.Sbxd");
    async Task<bool> BringUpAsync(string kind)
    {
        await service.Lifecycle.WaitAsync(lifetime.ApplicationStopping);
        try
        {
            if (service.Destroying)
            {
                return false;
            }

            await runtime.EnsureAsync(lifetime.ApplicationStopping);
            try
            {
                await WaitForAgentAsync(agent, lifetime.ApplicationStopping);
            }
            catch (Exception ex) when (ex is RpcException or Polly.Timeout.TimeoutRejectedException)
            {
                throw new InvalidOperationException($"hive-agent did not answer within 30 s ({ex.Message}); agent log: {runtime.AgentLogTail()}");
            }

            service.SetState(SandboxState.Running);
            Log.Running(log, layout.Name, runtime.ContainerPid);
            await RecordAsync(EventIngest.Lifecycle(kind, kind == "lifecycle.started" ? "container running" : "the container's init exited; container started again on the same rootfs", "container", runtime.ContainerPid));
            return true;
        }
        catch (Exception ex) when (!lifetime.ApplicationStopping.IsCancellationRequested)
        {
            service.SetState(SandboxState.Failed, ex.Message);
            Log.Failed(log, layout.Name, ex.Message);
            await RecordAsync(EventIngest.Lifecycle("lifecycle.failed", ex.Message, "container"));
            return false;
        }
        finally
        {
            service.Lifecycle.Release();
        }
    }

    await BringUpAsync("lifecycle.started");
    _ = Task.Run(() => UsageSampler.RunAsync(layout, runtime, service, RecordAsync, lifetime.ApplicationStopping));

    // A sidecar (a workspace's SbxFuse, SbxProxy) died: start it again in place, serialised with
    // the other lifecycle changes; the container keeps running.
    async Task RestartSidecarAsync(Func<CancellationToken, Task> ensure, string detail, string component)
    {
        await service.Lifecycle.WaitAsync(lifetime.ApplicationStopping);
        try
        {
            if (!service.Destroying)
            {
                await ensure(lifetime.ApplicationStopping);
                await RecordAsync(EventIngest.Lifecycle("lifecycle.sidecar_restarted", detail, component));
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException)
        {
            Log.RemountFailed(log, layout.Name, ex.Message);
        }
        finally
        {
            service.Lifecycle.Release();
        }
    }

    // Watchdog: if the container's init (the agent) dies — crashed, OOM-killed, told to stop — the
    // container is started again on the same rootfs: processes are lost, files are not.
    _ = Task.Run(async () =>
    {
        var backoff = TimeSpan.FromMilliseconds(500);
        while (!lifetime.ApplicationStopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(backoff, lifetime.ApplicationStopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var state = service.State;
            if (service.Destroying)
            {
                return;
            }

            if (state == SandboxState.Running && runtime.Network.ProxyDown())
            {
                // Egress is closed while SbxProxy is down (the redirect leads nowhere): start it again.
                Log.ProxyDown(log, layout.Name);
                await RestartSidecarAsync(runtime.Network.EnsureProxyAsync, "SbxProxy exited; started again (egress failed closed meanwhile)", "sbxproxy");
                backoff = TimeSpan.FromMilliseconds(200);
                continue;
            }

            if (state == SandboxState.Running && runtime.ContainerAlive() && runtime.Workspaces.AnyDown())
            {
                // A workspace lost its SbxFuse: mount a new one in place (it propagates into the running
                // container). Processes keep running; an operation in flight at the crash saw an error.
                Log.WorkspaceDown(log, layout.Name);
                await RestartSidecarAsync(runtime.Workspaces.EnsureAsync, "a workspace's SbxFuse exited; mounted again in place, the container kept running", "sbxfuse");
                backoff = TimeSpan.FromMilliseconds(250);
                continue;
            }

            var dead = state == SandboxState.Running && !runtime.ContainerAlive();
            var retry = state == SandboxState.Failed && service.ContainerExited;
            if (!dead && !retry)
            {
                backoff = TimeSpan.FromMilliseconds(runtime.Network.Enabled ? 200 : 500);
                continue;
            }

            Log.Restarting(log, layout.Name);
            if (dead)
            {
                await RecordAsync(EventIngest.Lifecycle("lifecycle.stopped", "the container's init exited (crashed, killed or OOM-killed); its processes are gone", "container"));
            }

            service.SetState(SandboxState.Creating, "restarting: the container's init exited");
            if (!await BringUpAsync("lifecycle.restarted"))
            {
                service.MarkContainerExited();
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    });

    // SIGTERM/SIGINT stop serving; the container keeps running and the next Sbxd adopts it.
    await app.WaitForShutdownAsync();
    return 0;
}

static async Task WaitForAgentAsync(GrpcChannel agent, CancellationToken cancellationToken) =>
    await Resilience.AgentReady.ExecuteAsync(
        async ct => await agent.UnaryAsync<PingRequest, PingResponse>("/hive.v1.Agent/Ping", new PingRequest(), new CallOptions(TimeSpan.FromSeconds(2), ct)),
        cancellationToken);

internal static partial class Log
{
    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Sandbox {Name} running (container init pid {Pid})")]
    public static partial void Running(ILogger logger, string name, int pid);

    [LoggerMessage(EventId = 11, Level = LogLevel.Error, Message = "Sandbox {Name} failed to start: {Reason}")]
    public static partial void Failed(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 13, Level = LogLevel.Warning, Message = "Sandbox {Name}: a workspace's SbxFuse exited; remounting it in place")]
    public static partial void WorkspaceDown(ILogger logger, string name);

    [LoggerMessage(EventId = 14, Level = LogLevel.Error, Message = "Sandbox {Name}: restarting a sidecar failed: {Reason}")]
    public static partial void RemountFailed(ILogger logger, string name, string reason);

    [LoggerMessage(EventId = 15, Level = LogLevel.Error, Message = "Sandbox {Name}: a {Kind} event could not be recorded: {Reason}")]
    public static partial void EventLost(ILogger logger, string name, string kind, string reason);

    [LoggerMessage(EventId = 16, Level = LogLevel.Warning, Message = "Sandbox {Name}: SbxProxy exited; starting it again")]
    public static partial void ProxyDown(ILogger logger, string name);

    [LoggerMessage(EventId = 12, Level = LogLevel.Warning, Message = "Sandbox {Name}: the container's init exited; starting the container again")]
    public static partial void Restarting(ILogger logger, string name);
}
