using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using Hive.Interop;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// Brings a sandbox to "running" and takes it apart. Both directions are idempotent: ensure adopts
/// whatever already exists (a restarted Sbxd re-adopts a live container untouched), teardown
/// tolerates anything already gone.
/// </summary>
internal sealed partial class SandboxRuntime(SandboxLayout layout, ILogger<SandboxRuntime> logger)
{
    private const string Runc = "runc";

    /// <summary>
    /// The commands' environment reaches the container under this prefix, which the agent strips off
    /// again (kept in step with Agent/AgentEnvironment.CommandPrefix): the agent's own environment is
    /// exactly its bundle's agent.env, so nothing an image or a sandbox spec sets (LD_PRELOAD,
    /// LD_LIBRARY_PATH, DOTNET_STARTUP_HOOKS, ASPNETCORE_URLS, OPENSSL_CONF, …) applies to PID 1.
    /// </summary>
    public const string CommandEnvironmentPrefix = "HIVE_CMD_";

    private const int CapSysResource = 24;

    private AgentOutput? _agentOutput;

    public Cgroups Cgroups { get; } = new(layout);

    /// <summary>PID (host namespace) of the container's init, or 0.</summary>
    public int ContainerPid { get; private set; }

    public Workspaces Workspaces { get; } = new(layout, logger);

    public SandboxNetwork Network { get; } = new(layout, logger);

    public UserNamespace UserNamespace { get; } = new(layout, logger);

    /// <summary>The writable layer's own file system (the sandbox's <c>disk</c>).</summary>
    public DiskQuota Disk { get; } = new(layout, logger);

    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        await RetireEarlierLayoutAsync(cancellationToken);
        await UserNamespace.EnsureAsync(cancellationToken);
        Workspaces.Ids = UserNamespace.Range;
        DetachRootfsOfAnEarlierDisk();
        await Disk.EnsureAsync(cancellationToken);
        EnsureRootfs();
        EnsureBinds();
        await EnsureNetworkNamespaceAsync(cancellationToken);
        await Network.EnsureAsync(cancellationToken);
        Workspaces.PrepareTargets();
        await EnsureContainerAsync(cancellationToken);
        await Workspaces.EnsureAsync(cancellationToken);
    }

    /// <summary>True while the container's init process is alive.</summary>
    public bool ContainerAlive() => ProcFs.IsAlive(ContainerPid);

    /// <summary>
    /// A rootfs still mounted while the disk under its upper layer is not (a host that lost its
    /// state-dir mounts but kept the runtime dir's, as after a partial clean-up) stands on a disk
    /// mount that is gone: adopting it would write to a detached file system while the image is
    /// mounted again beside it. It is detached, and mounted anew on the disk.
    /// </summary>
    private void DetachRootfsOfAnEarlierDisk()
    {
        if (!Disk.Enabled || Libc.IsMountPoint(layout.DiskMount) || !Libc.IsMountPoint(layout.Rootfs))
        {
            return;
        }

        if (Libc.umount2(layout.Rootfs, 0) != 0 && Libc.umount2(layout.Rootfs, Libc.MNT_DETACH) != 0)
        {
            throw new InvalidOperationException($"the rootfs at {layout.Rootfs} stands on a disk that is no longer mounted and cannot be unmounted (errno {Marshal.GetLastPInvokeError()})");
        }

        LogRootfsDetached(logger, layout.Rootfs);
    }

    private void EnsureRootfs()
    {
        if (UserNamespace.Enabled)
        {
            UserNamespace.PrepareRuntimeDir();
        }

        if (Libc.IsMountPoint(layout.Rootfs))
        {
            LogAdopted(logger, "rootfs", layout.Rootfs);
            return;
        }

        var lower = layout.Spec.ImageRootfs;
        if (!Directory.Exists(lower))
        {
            throw new InvalidOperationException($"image root filesystem '{lower}' does not exist");
        }

        foreach (var dir in new[] { layout.Upper, layout.Work, layout.Rootfs })
        {
            Directory.CreateDirectory(dir);
        }

        var fresh = !Directory.EnumerateFileSystemEntries(layout.Upper).Any();
        if (UserNamespace.Enabled)
        {
            // The image is shared and read-only: the sandbox sees it through an idmapped clone (its
            // files owned by the range's ids), never a copy; its own root owns the upper layer's root.
            if (fresh)
            {
                UserNamespace.OwnUpper(layout.Upper);
            }

            using var userns = UserNamespace.Open();
            Overlay.Mount("overlay", layout.Rootfs, [lower], (layout.Upper, layout.Work), 0, path => Libc.OpenIdmappedTree(path, userns));
        }
        else
        {
            Overlay.Mount("overlay", layout.Rootfs, [lower], (layout.Upper, layout.Work), 0);
        }

        // /etc/hostname says the sandbox's name, like the UTS hostname. Only on a fresh upper layer:
        // then the tree is the (trusted) image's; later it is the agent's, and host-side writes
        // into it could be steered by symlinks.
        var etc = new DirectoryInfo(Path.Combine(layout.Rootfs, "etc"));
        var hostname = new FileInfo(Path.Combine(etc.FullName, "hostname"));
        if (fresh && etc.Exists && etc.LinkTarget is null && (!hostname.Exists || hostname.LinkTarget is null))
        {
            var existed = hostname.Exists;
            File.WriteAllText(hostname.FullName, layout.Name + "\n");
            if (!existed)
            {
                UserNamespace.OwnFile(hostname.FullName); // made by the host's root: give it to the sandbox's
            }
        }

        LogCreated(logger, "rootfs", layout.Rootfs);
    }

    private async Task EnsureNetworkNamespaceAsync(CancellationToken cancellationToken)
    {
        var adopted = false;
        if (File.Exists(layout.NetnsPath) && Libc.IsMountPoint(layout.NetnsPath))
        {
            if (!UserNamespace.Enabled || UserNamespace.Owns(layout.NetnsPath))
            {
                LogAdopted(logger, "netns", layout.NetnsName);
                adopted = true;
            }
            else
            {
                // Made before the sandbox's user namespace was (made again): the container could not mount
                // its /sys in it. Start over; the network is set up again on the new one.
                await Command.RequireAsync("ip", ["netns", "delete", layout.NetnsName], "ip netns delete", cancellationToken);
            }
        }

        if (!adopted)
        {
            if (File.Exists(layout.NetnsPath))
            {
                File.Delete(layout.NetnsPath); // a stale placeholder without a namespace behind it
            }

            if (UserNamespace.Enabled)
            {
                await UserNamespace.CreateNetworkNamespaceAsync(layout.NetnsName, cancellationToken);
            }
            else
            {
                await Command.RequireAsync("ip", ["netns", "add", layout.NetnsName], "ip netns add", cancellationToken);
            }

            await Command.RequireAsync("ip", ["-n", layout.NetnsName, "link", "set", "lo", "up"], "ip link set lo up", cancellationToken);
            LogCreated(logger, "netns", layout.NetnsName);
        }

        // Ports below 1024 need no privilege in the sandbox's own namespace (servers on 80 or 443
        // work without CAP_NET_BIND_SERVICE, which OciSpec drops). Set from the host, every start
        // (an adopted namespace may predate it); the sandbox cannot change it (no CAP_NET_ADMIN,
        // /proc/sys read-only).
        await Command.RequireAsync("ip", ["netns", "exec", layout.NetnsName, "/bin/sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start"], "allow binding low ports in the sandbox", cancellationToken);
    }

    private async Task EnsureContainerAsync(CancellationToken cancellationToken)
    {
        // Before anything else: an adopted agent may have been writing into the pipe while no Sbxd read it.
        if (_agentOutput is { Failed: true })
        {
            _agentOutput.Dispose();
            _agentOutput = null;
        }

        _agentOutput ??= AgentOutput.Open(layout, logger);
        var state = await StateAsync(cancellationToken);
        if (state is { Status: "running", Pid: > 0 } && UserNamespace.Enabled && !UserNamespace.Holds(state.Value.Pid))
        {
            // Running in a user namespace that is no longer the sandbox's (its namespaces were made
            // again): it cannot be adopted. Its processes are lost, its files kept.
            LogForeignNamespace(logger, layout.Name);
            await Command.RunAsync(Runc, ["kill", "--all", layout.ContainerId, "KILL"], cancellationToken);
        }
        else if (state is { Status: "running", Pid: > 0 })
        {
            ContainerPid = state.Value.Pid;
            ProtectAgentFromOomKiller();
            LogAdopted(logger, "container", layout.ContainerId);
            return;
        }

        if (state is not null)
        {
            // Created, stopped or paused: start over (the rootfs and its upper layer are kept).
            await Command.RunAsync(Runc, ["delete", "--force", layout.ContainerId], cancellationToken);
        }

        // The container must bind the bare workspace mount points; SbxFuse mounts on them afterwards.
        Workspaces.Detach();
        Directory.CreateDirectory(layout.Bundle);
        var env = ContainerEnvironment();
        await File.WriteAllTextAsync(Path.Combine(layout.Bundle, "config.json"), OciSpec.Build(layout, env, Workspaces.ContainerMounts(), Network.ContainerFiles(), UserNamespace.Range), cancellationToken);

        // The agent's listening socket: bound here on the host (a path the container never sees),
        // handed to the agent as fd 3 through runc --preserve-fds.
        if (File.Exists(layout.AgentSocket))
        {
            File.Delete(layout.AgentSocket);
        }

        if (layout.AgentSocket.Length > 107)
        {
            throw new InvalidOperationException($"state directory path too long for a Unix socket: {layout.AgentSocket}");
        }

        // .NET unlinks the path a socket was bound to when the socket is disposed, so bind a temporary
        // name and rename it: our copy is closed after runc has passed it on, the agent keeps listening.
        var bindPath = layout.AgentSocket + ".new";
        File.Delete(bindPath);
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(bindPath));
        listener.Listen(128);
        File.Move(bindPath, layout.AgentSocket, overwrite: true);
        var fd = (int)listener.Handle;

        // stdout and stderr: a fresh write end of the agent's FIFO (see AgentOutput), never a host file.
        using var output = _agentOutput.OpenWriter();
        var outFd = (int)output.DangerousGetHandle();
        Libc.SetCloseOnExec(fd, false);
        Libc.SetCloseOnExec(outFd, false);
        var pidFile = Path.Combine(layout.StateDir, "container.pid");
        File.Delete(pidFile);
        try
        {
            // bash, not sh: dash only understands single-digit descriptors in redirections.
            var run = await Command.RunAsync(
                "/bin/bash",
                ["-c", $"exec runc run --detach --preserve-fds 1 --pid-file \"$1\" --bundle \"$2\" \"$3\" 3<&{fd} {fd}<&- </dev/null >&{outFd} 2>&1 {outFd}>&-", "bash", pidFile, layout.Bundle, layout.ContainerId],
                cancellationToken,
                TimeSpan.FromSeconds(60));
            if (!run.Ok)
            {
                throw new InvalidOperationException($"runc run failed (exit {run.ExitCode}): {AgentLogTail()}");
            }
        }
        finally
        {
            Libc.SetCloseOnExec(fd, true);
            Libc.SetCloseOnExec(outFd, true);
        }

        ContainerPid = int.Parse((await File.ReadAllTextAsync(pidFile, cancellationToken)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        ProtectAgentFromOomKiller();
        LogCreated(logger, "container", layout.ContainerId);
    }

    /// <summary>
    /// The OOM killer must take the sandbox's commands (they raise themselves to 1000), never its init:
    /// the container would die with it. Lowering a score takes CAP_SYS_RESOURCE, which Sbxd has on an
    /// ordinary host (not on every VM: there the agent keeps 0 and only the commands' 1000 protects
    /// it). Written through the legacy <c>oom_adj</c> (-17 is -1000): a privileged write to
    /// <c>oom_score_adj</c> also lowers the floor (<c>oom_score_adj_min</c>) that every child inherits,
    /// and any command could then make itself unkillable as well (proc(5)).
    /// </summary>
    private void ProtectAgentFromOomKiller()
    {
        if (!ProcFs.HasCapability(Environment.ProcessId, CapSysResource))
        {
            LogOomProtectionUnavailable(logger, layout.Name);
            return;
        }

        try
        {
            File.WriteAllText($"/proc/{ContainerPid}/oom_adj", "-17");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            LogOomProtectionFailed(logger, layout.Name, ContainerPid, ex.Message);
        }
    }

    /// <summary>
    /// The agent's own environment — its bundle's agent.env and nothing else — followed by the
    /// commands' environment under <see cref="CommandEnvironmentPrefix"/>.
    /// </summary>
    private List<string> ContainerEnvironment()
    {
        var env = new List<string>();
        var agentEnv = Path.Combine(layout.Spec.AgentBundle, "agent.env");
        if (File.Exists(agentEnv))
        {
            env.AddRange(File.ReadAllLines(agentEnv).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#') && l.Contains('=', StringComparison.Ordinal)));
        }

        env.AddRange(CommandEnvironment().Select(e => CommandEnvironmentPrefix + e));
        return env;
    }

    /// <summary>Image env, then HIVE_SANDBOX, then the network's, then the sandbox's own env; the last value of a name wins.</summary>
    private List<string> CommandEnvironment()
    {
        var env = new List<string>();
        var imageJson = Path.Combine(Path.GetDirectoryName(layout.Spec.ImageRootfs) ?? "/", "image.json");
        if (File.Exists(imageJson))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(imageJson));
            if (doc.RootElement.TryGetProperty("env", out var list) && list.ValueKind == JsonValueKind.Array)
            {
                env.AddRange(list.EnumerateArray().Select(e => e.GetString()).OfType<string>());
            }
        }

        if (env.Count == 0)
        {
            env.Add("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        }

        env.Add("HIVE_SANDBOX=" + layout.Name);
        env.AddRange(Network.ContainerEnvironment());
        env.AddRange(layout.Spec.Env.Select(kv => kv.Key + "=" + kv.Value));

        // Later entries win: keep the last value of each name.
        return env.Select((e, i) => (Key: e[..e.IndexOf('=', StringComparison.Ordinal)], Entry: e, Index: i))
            .GroupBy(e => e.Key, StringComparer.Ordinal)
            .Select(g => g.Last())
            .OrderBy(e => e.Index)
            .Select(e => e.Entry)
            .ToList();
    }

    /// <summary>Kills the container (the watchdog then starts it again).</summary>
    public async Task StopContainerAsync(CancellationToken cancellationToken)
    {
        await Command.RunAsync(Runc, ["kill", "--all", layout.ContainerId, "KILL"], cancellationToken);
        for (var i = 0; i < 100 && ContainerAlive(); i++)
        {
            await Task.Delay(20, cancellationToken);
        }
    }

    /// <summary>Removes the container, its cgroups, mounts, network namespace and the state directory.</summary>
    /// <param name="beforeRemovingState">Runs once everything is down, just before the state dir (and its spools) go.</param>
    public async Task TearDownAsync(CancellationToken cancellationToken, Func<Task>? beforeRemovingState = null)
    {
        var problems = new List<string>();
        await Command.RunAsync(Runc, ["kill", "--all", layout.ContainerId, "KILL"], cancellationToken);
        var delete = await Command.RunAsync(Runc, ["delete", "--force", layout.ContainerId], cancellationToken);
        if (!delete.Ok && !delete.Stderr.Contains("does not exist", StringComparison.Ordinal) && await StateAsync(cancellationToken) is not null)
        {
            problems.Add(delete.Describe("runc delete"));
        }

        Workspaces.TearDown();
        await Workspaces.UnmountVolumesAsync(problems, cancellationToken);
        _agentOutput?.Dispose();
        _agentOutput = null;
        try
        {
            await Cgroups.RemoveAsync(cancellationToken);
        }
        catch (IOException ex)
        {
            problems.Add(ex.Message);
        }

        // The rootfs first (with a user namespace it is mounted in the runtime dir, outside the state
        // dir): its overlay holds the disk's file system, whose unmount would otherwise be lazy and
        // its loop device linger until the overlay went.
        UserNamespace.RemoveRuntimeDir(problems);
        foreach (var mount in Libc.MountsUnder(layout.StateDir))
        {
            if (Libc.umount2(mount, 0) != 0 && Libc.umount2(mount, Libc.MNT_DETACH) != 0)
            {
                problems.Add(SyscallException.FromLastError("umount2", mount).Message);
            }
        }

        await Disk.TearDownAsync(problems, cancellationToken);
        await Network.TearDownAsync(problems, cancellationToken);
        if (File.Exists(layout.NetnsPath))
        {
            var netns = await Command.RunAsync("ip", ["netns", "delete", layout.NetnsName], cancellationToken);
            if (File.Exists(layout.NetnsPath))
            {
                Libc.umount2(layout.NetnsPath, Libc.MNT_DETACH);
                try
                {
                    File.Delete(layout.NetnsPath);
                }
                catch (IOException ex)
                {
                    problems.Add(netns.Describe("ip netns delete") + "; " + ex.Message);
                }
            }
        }

        if (problems.Count == 0 && Directory.Exists(layout.StateDir))
        {
            if (Libc.MountsUnder(layout.StateDir).Count > 0)
            {
                problems.Add("mounts remain under " + layout.StateDir);
            }
            else
            {
                if (beforeRemovingState is not null)
                {
                    await beforeRemovingState();
                }

                Directory.Delete(layout.StateDir, recursive: true);
                UserNamespace.ReleaseLease(); // its files are gone: the range may serve another sandbox
            }
        }

        if (problems.Count > 0)
        {
            throw new InvalidOperationException("teardown incomplete: " + string.Join("; ", problems));
        }

        LogTornDown(logger, layout.Name);
    }

    private async Task<(string Status, int Pid)?> StateAsync(CancellationToken cancellationToken)
    {
        var state = await Command.RunAsync(Runc, ["state", layout.ContainerId], cancellationToken);
        if (!state.Ok)
        {
            return null;
        }

        using var doc = JsonDocument.Parse(state.Stdout);
        return (doc.RootElement.GetProperty("status").GetString() ?? "unknown", doc.RootElement.TryGetProperty("pid", out var pid) ? pid.GetInt32() : 0);
    }

    /// <summary>The last lines the agent (and runc) wrote, for error messages.</summary>
    public string AgentLogTail()
    {
        _agentOutput?.WaitDrained(TimeSpan.FromSeconds(1));
        return LogTail.Of(layout.AgentLog);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Adopted existing {What} {Name}")]
    private static partial void LogAdopted(ILogger logger, string what, string name);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Created {What} {Name}")]
    private static partial void LogCreated(ILogger logger, string what, string name);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Sandbox {Name} torn down")]
    private static partial void LogTornDown(ILogger logger, string name);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Sandbox {Name}: the OOM killer could not be told to spare the agent (pid {Pid}): {Reason}")]
    private static partial void LogOomProtectionFailed(ILogger logger, string name, int pid, string reason);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Sandbox {Name}: its container runs in a user namespace that is no longer the sandbox's; starting it again")]
    private static partial void LogForeignNamespace(ILogger logger, string name);

    [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Sandbox {Name}: Sbxd lacks CAP_SYS_RESOURCE, so the agent keeps OOM score 0 (its commands run at 1000)")]
    private static partial void LogOomProtectionUnavailable(ILogger logger, string name);

    [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "Rootfs {Path} stood on a disk that is no longer mounted: detached, mounted again")]
    private static partial void LogRootfsDetached(ILogger logger, string path);
}
