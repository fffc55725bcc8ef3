using System.Collections.Concurrent;
using Hive.Controller.Api;
using Hive.Controller.Hosting;
using Hive.Controller.Images;
using Hive.Controller.Sandboxes.Config;
using Hive.Controller.Sandboxes.Sbxd;
using Hive.Controller.Sandboxes.Store;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Controller.Sandboxes;

/// <summary>
/// Creates, recovers and destroys sandboxes. One lock per name serialises lifecycle changes of a
/// sandbox; operations on different sandboxes run in parallel.
/// </summary>
/// <remarks>
/// <code>
/// create:  row(creating) → state dir + spec.pb → Sbxd (setsid) → poll GetStatus → row(running)
/// recover: GetStatus fails and no Sbxd process → start Sbxd again (it re-adopts the container)
/// destroy: row(destroying) → Sbxd.Destroy (or `hive-sbxd --destroy` if Sbxd is gone) → row deleted
/// </code>
/// </remarks>
internal sealed partial class SandboxManager(
    SandboxStore store,
    SbxdLauncher launcher,
    SbxdClients clients,
    ImageCatalog images,
    HostFacts host,
    ControllerOptions options,
    TimeProvider time,
    Events.ControllerSpools spools,
    Mcp.AgentHttp agents,
    ILogger<SandboxManager> logger)
{
    private static readonly TimeSpan StatusTimeout = TimeSpan.FromSeconds(3);
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _rootsGate = new(1, 1);
    private readonly Polly.ResiliencePipeline<Protos.V1.SandboxStatus> _readiness = Readiness.Build(time);

    public async Task<(SandboxRecord Record, bool Created)> CreateAsync(CreateSandboxRequest request, string? pathName, bool getOrCreate)
    {
        if (pathName is not null && !SandboxConfigValidator.IsValidName(pathName))
        {
            throw ApiException.BadRequest(SandboxConfigValidator.NameError(pathName));
        }

        var disks = new DiskSettings(options.DefaultDiskBytes, options.DefaultWorkspaceQuotaBytes, options.DiskInodesPerGiB, HostFacts.FileSystemBytes(options.DataDir));
        var config = SandboxConfigValidator.Validate(request, pathName, host.MemoryBytes, host.Cpus, disks);
        foreach (var fs in config.Fs.Where(f => f.Root is not null))
        {
            launcher.Roots.Resolve(fs.Root!, create: false); // refuse a root outside the operator's --fs-roots before anything is created
        }

        using var held = await LockAsync(config.Name);
        if (store.Find(config.Name) is { } existing)
        {
            if (!getOrCreate)
            {
                throw ApiException.Conflict($"sandbox '{config.Name}' already exists");
            }

            var diffs = SandboxConfigValidator.Differences(request, config, existing.Config);
            if (diffs.Count > 0)
            {
                throw ApiException.Conflict($"sandbox '{config.Name}' exists with a different configuration: {string.Join("; ", diffs)}");
            }

            return (existing, false);
        }

        CheckSecretInjections(config.Egress);
        config = config with { Fs = WorkspaceQuotas.Resolve(config.Fs, mount => launcher.WorkspaceDir(config.Name, mount), disks) };
        var rootfs = images.ResolveRootfs(config.Image);
        var now = time.GetUtcNow();
        var record = new SandboxRecord
        {
            Config = config,
            Status = LifecycleStatus.Creating,
            CreatedAt = now,
            ExpiresAt = now.AddSeconds(config.TimeoutSeconds),
        };
        // Roots are checked against the other sandboxes' and the row inserted under one lock, so two
        // creates cannot each miss the other's root.
        await _rootsGate.WaitAsync();
        try
        {
            launcher.Roots.RefuseOverlaps(config.Name, config.Fs, store.List().SelectMany(r => r.Config.Fs.Where(f => f.Root is not null).Select(f => (r.Name, f.Root!))));
            if (!store.TryInsert(record))
            {
                throw ApiException.Conflict($"sandbox '{config.Name}' already exists");
            }
        }
        finally
        {
            _rootsGate.Release();
        }

        try
        {
            // A leftover state dir without a row is debris of a crash: clear it before reuse.
            if (Directory.Exists(launcher.StateDir(config.Name)))
            {
                await TearDownAsync(config.Name, CancellationToken.None);
            }

            launcher.WriteSpec(config, rootfs, now);
            using var timeout = new CancellationTokenSource(options.CreateTimeout);
            await launcher.StartAsync(config.Name, timeout.Token);
            var status = await WaitRunningAsync(config.Name, timeout.Token);
            record = record with { Status = LifecycleStatus.Running, Ip = string.IsNullOrEmpty(status.Ip) ? null : status.Ip, IdBase = status.IdBase == 0 ? null : status.IdBase };
            store.Update(record);
            LogCreated(logger, config.Name, config.Memory, config.Cpus, config.Pids);
            return (record, true);
        }
        catch (Exception ex)
        {
            LogCreateFailed(logger, config.Name, ex.Message);
            try
            {
                await TearDownAsync(config.Name, CancellationToken.None);
            }
            catch (Exception cleanup)
            {
                LogCleanupFailed(logger, config.Name, cleanup.Message);
            }

            store.Delete(config.Name);
            throw new ApiException(StatusCodes.Status500InternalServerError, $"failed to create sandbox '{config.Name}': {ex.Message}");
        }
    }

    /// <summary>
    /// Replaces the ACL rules of live workspaces: stored first, then pushed through Sbxd to each
    /// SbxFuse (no remount; open handles follow on their next operation).
    /// </summary>
    public async Task<SandboxRecord> UpdateAclsAsync(string name, UpdateSandboxRequest request, string actor)
    {
        using var held = await LockAsync(name);
        var record = store.Get(name);
        var mounts = SandboxConfigValidator.ValidateAclUpdate(request, record.Config.Fs);
        var changed = mounts.Where((m, i) => !ReferenceEquals(m, record.Config.Fs[i])).ToList();
        record = record with { Config = record.Config with { Fs = mounts } };
        store.Update(record);
        foreach (var mount in changed)
        {
            var update = new Protos.V1.UpdateAclsRequest { Mount = mount.Mount, Actor = actor };
            update.Rules.AddRange((mount.Acls ?? []).Select(a => new Protos.V1.FsAclRule { Path = a.Path, Access = a.Access }));
            await CallAsync(name, c => c.UpdateAclsAsync(name, update, CancellationToken.None));
        }

        LogAclsUpdated(logger, name, changed.Count);
        return record;
    }

    /// <summary>Replaces the egress policy: stored first, then pushed through Sbxd to SbxProxy (connections stay open).</summary>
    public async Task<SandboxRecord> UpdateEgressAsync(string name, System.Text.Json.JsonElement egress, string actor)
    {
        using var held = await LockAsync(name);
        var record = store.Get(name);
        if (record.Config.Network == "none")
        {
            throw ApiException.BadRequest("egress: the sandbox's network is 'none' (it has no egress); create it with network 'isolated' or 'shared'");
        }

        string? json = null;
        if (egress.ValueKind != System.Text.Json.JsonValueKind.Null)
        {
            var errors = new List<string>();
            json = SandboxConfigValidator.ValidateEgress(egress, errors);
            if (errors.Count > 0)
            {
                throw ApiException.BadRequest(string.Join("; ", errors));
            }

            CheckSecretInjections(json);
        }

        record = record with { Config = record.Config with { Egress = json } };
        store.Update(record);
        await CallAsync(name, c => c.UpdateEgressAsync(name, new Protos.V1.UpdateEgressRequest { EgressJson = json ?? string.Empty, Actor = actor }, CancellationToken.None));
        LogEgressUpdated(logger, name);
        return record;
    }

    /// <summary>A rule may inject a secret only toward hosts the secret is bound to (400 naming each rule and secret otherwise).</summary>
    private void CheckSecretInjections(string? egressJson)
    {
        if (egressJson is null)
        {
            return;
        }

        var errors = new Secrets.SecretStore(options.SecretsDir).CheckInjections(Hive.Policy.Net.EgressPolicy.Parse(egressJson));
        if (errors.Count > 0)
        {
            throw ApiException.BadRequest(string.Join("; ", errors));
        }
    }

    public async Task DestroyAsync(string name)
    {
        using var held = await LockAsync(name);
        var record = store.Get(name);
        store.SetStatus(name, LifecycleStatus.Destroying, null);
        try
        {
            await TearDownAsync(name, CancellationToken.None);
        }
        catch (Exception ex)
        {
            store.SetStatus(name, LifecycleStatus.Failed, "destroy failed: " + ex.Message);
            throw new ApiException(StatusCodes.Status500InternalServerError, $"failed to destroy sandbox '{name}': {ex.Message}");
        }

        store.Delete(name);
        LogDestroyed(logger, name, record.Status);
    }

    /// <summary>
    /// Runs a call against the sandbox's Sbxd; if Sbxd is unreachable and its process is gone, it is
    /// restarted (re-adopting the container) and the call retried once.
    /// </summary>
    public async Task<T> CallAsync<T>(string name, Func<SbxdClients, Task<T>> call)
    {
        var record = store.Get(name);
        if (record.Status is LifecycleStatus.Creating or LifecycleStatus.Destroying)
        {
            throw ApiException.Conflict($"sandbox '{name}' is {record.Status}");
        }

        try
        {
            return await call(clients);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            // Sbxd gone: restart it. A restarted Sbxd — ours, or the supervisor's, which may have come
            // first — answers "creating" until the sandbox runs again: wait for that, then retry once.
            // Otherwise (Sbxd up and not starting) the failure is the answer: no blind retry.
            if (launcher.LivePid(name) is not null && !await IsStartingAsync(name))
            {
                throw;
            }

            await RecoverAsync(name, CancellationToken.None);
            using var timeout = new CancellationTokenSource(options.CreateTimeout);
            await WaitRunningAsync(name, timeout.Token);
            return await call(clients);
        }
    }

    private async Task<bool> IsStartingAsync(string name)
    {
        try
        {
            return (await clients.GetStatusAsync(name, StatusTimeout, CancellationToken.None)).State == Protos.V1.SandboxState.Creating;
        }
        catch (RpcException)
        {
            return false;
        }
    }

    /// <summary>Checks one sandbox's Sbxd and restarts it if its process is gone. Returns the live status, if any.</summary>
    public async Task<Protos.V1.SandboxStatus?> CheckAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var status = await clients.GetStatusAsync(name, StatusTimeout, cancellationToken);
            Reflect(name, status);
            return status;
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
        {
            if (launcher.LivePid(name) is not null)
            {
                return null; // Alive but busy or still starting: look again next round.
            }

            await RecoverAsync(name, cancellationToken);
            return null;
        }
    }

    private async Task RecoverAsync(string name, CancellationToken cancellationToken)
    {
        using var held = await LockAsync(name);
        if (store.Find(name) is not { Status: LifecycleStatus.Running or LifecycleStatus.Failed })
        {
            return;
        }

        if (launcher.LivePid(name) is not null)
        {
            return; // Someone else restarted it while we waited for the lock.
        }

        LogRecovering(logger, name);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.CreateTimeout);
            clients.Forget(name);
            await launcher.StartAsync(name, timeout.Token);
            var status = await WaitRunningAsync(name, timeout.Token);
            Reflect(name, status);
            LogRecovered(logger, name);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            store.SetStatus(name, LifecycleStatus.Failed, "Sbxd stopped and could not be restarted: " + ex.Message);
            LogRecoverFailed(logger, name, ex.Message);
        }
    }

    private void Reflect(string name, Protos.V1.SandboxStatus status)
    {
        var current = store.Find(name);
        if (current is null || current.Status is LifecycleStatus.Creating or LifecycleStatus.Destroying)
        {
            return;
        }

        var (state, error) = status.State switch
        {
            SandboxState.Running => (LifecycleStatus.Running, (string?)null),
            SandboxState.Failed or SandboxState.Stopped => (LifecycleStatus.Failed, string.IsNullOrEmpty(status.Error) ? "container stopped" : status.Error),
            _ => (current.Status, current.Error),
        };
        if (state != current.Status || error != current.Error)
        {
            store.SetStatus(name, state, error);
        }
    }

    private async Task<Protos.V1.SandboxStatus> WaitRunningAsync(string name, CancellationToken cancellationToken)
    {
        var startedWaiting = time.GetUtcNow();
        try
        {
            var status = await _readiness.ExecuteAsync(
                async ct =>
                {
                    // If Sbxd already died, say why instead of polling until the timeout.
                    if (time.GetUtcNow() - startedWaiting > TimeSpan.FromSeconds(3) && launcher.LivePid(name) is null
                        && File.Exists(Path.Combine(launcher.StateDir(name), "sbxd.pid")))
                    {
                        throw new InvalidOperationException("Sbxd exited: " + launcher.LogTail(name));
                    }

                    return await clients.GetStatusAsync(name, StatusTimeout, ct);
                },
                cancellationToken);
            return status.State == SandboxState.Running
                ? status
                : throw new InvalidOperationException(string.IsNullOrEmpty(status.Error) ? "sandbox failed to start" : status.Error);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"sandbox did not become ready in {options.CreateTimeout.TotalSeconds:0}s; Sbxd log: {launcher.LogTail(name)}");
        }
    }

    private async Task TearDownAsync(string name, CancellationToken cancellationToken)
    {
        // Remember the pid now: the pid file disappears with the state directory.
        var sbxdPid = launcher.LivePid(name);
        try
        {
            await clients.DestroyAsync(name, TimeSpan.FromSeconds(90), cancellationToken);
        }
        catch (RpcException ex) when (ex.StatusCode is StatusCode.Unavailable or StatusCode.Internal or StatusCode.Cancelled)
        {
            // Sbxd is gone (or went away while exiting after the reply): clean up in the foreground.
        }
        finally
        {
            clients.Forget(name);
            spools.Forget(name);
            agents.Forget(name);
        }

        await WaitForExitAsync(sbxdPid, TimeSpan.FromSeconds(10));
        if (sbxdPid is { } lingering && Hive.Interop.ProcFs.IsAlive(lingering))
        {
            // Destroy failed or hung: a Sbxd left running could bring the container back. Stop it first.
            Hive.Interop.Libc.kill(lingering, Hive.Interop.Libc.SIGKILL);
            await WaitForExitAsync(sbxdPid, TimeSpan.FromSeconds(5));
        }

        if (Directory.Exists(launcher.StateDir(name)) && !await launcher.RunDestroyAsync(name, cancellationToken))
        {
            throw new InvalidOperationException("teardown incomplete: " + launcher.LogTail(name));
        }

        if (Directory.Exists(launcher.StateDir(name)))
        {
            throw new InvalidOperationException($"state directory {launcher.StateDir(name)} still exists after teardown");
        }
    }

    /// <summary>Waits for a Sbxd process to exit (it does so right after answering Destroy).</summary>
    private async Task WaitForExitAsync(int? pid, TimeSpan timeout)
    {
        var deadline = time.GetUtcNow() + timeout;
        while (pid is { } p && Hive.Interop.ProcFs.IsAlive(p) && time.GetUtcNow() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), time);
        }
    }

    private async Task<IDisposable> LockAsync(string name)
    {
        var gate = _locks.GetOrAdd(name, static _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync();
        return new Releaser(gate);
    }

    private sealed class Releaser(SemaphoreSlim gate) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                gate.Release();
            }
        }
    }

    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "Sandbox {Name}: egress policy replaced")]
    private static partial void LogEgressUpdated(ILogger logger, string name);

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Sandbox \"{Sandbox}\" created (memory {Memory}, cpus {Cpus}, pids {Pids})")]
    private static partial void LogCreated(ILogger logger, string sandbox, string memory, double cpus, int pids);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "Sandbox \"{Sandbox}\" could not be created: {Reason}")]
    private static partial void LogCreateFailed(ILogger logger, string sandbox, string reason);

    [LoggerMessage(EventId = 302, Level = LogLevel.Error, Message = "Cleanup after failed create of \"{Sandbox}\" failed: {Reason}")]
    private static partial void LogCleanupFailed(ILogger logger, string sandbox, string reason);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "Sandbox \"{Sandbox}\" destroyed (was {Status})")]
    private static partial void LogDestroyed(ILogger logger, string sandbox, string status);

    [LoggerMessage(EventId = 304, Level = LogLevel.Warning, Message = "Sbxd of sandbox \"{Sandbox}\" is gone; restarting it")]
    private static partial void LogRecovering(ILogger logger, string sandbox);

    [LoggerMessage(EventId = 305, Level = LogLevel.Information, Message = "Sandbox \"{Sandbox}\" recovered")]
    private static partial void LogRecovered(ILogger logger, string sandbox);

    [LoggerMessage(EventId = 306, Level = LogLevel.Error, Message = "Sandbox \"{Sandbox}\" could not be recovered: {Reason}")]
    private static partial void LogRecoverFailed(ILogger logger, string sandbox, string reason);

    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "Sandbox {Name}: ACLs of {Count} workspace(s) replaced")]
    private static partial void LogAclsUpdated(ILogger logger, string name, int count);
}
