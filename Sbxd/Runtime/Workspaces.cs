using System.Text.Json;
using Hive.Interop;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// The sandbox's governed workspaces: one hive-sbxfuse per mount, mounted on the host at
/// <c>&lt;state&gt;/binds/mounts/&lt;i&gt;</c> (on the binds tmpfs, so the container's mountinfo shows
/// <c>/mounts/&lt;i&gt;</c>, not a host path). That directory is first made a read-only shared bind of itself,
/// and the container binds it *before* any FUSE mount sits on it (its copy is a slave). Every FUSE
/// mount made there afterwards propagates into the running container, and every unmount too — so a
/// crashed SbxFuse is replaced in place: the container and its processes keep running, and the
/// read-only mount underneath means nothing can be written there while no SbxFuse serves it.
/// </summary>
internal sealed partial class Workspaces(SandboxLayout layout, ILogger logger)
{
    /// <summary>Workspaces whose root was refused (<see cref="WorkspaceRoot"/>): not restarted by the watchdog, refused once on record.</summary>
    private readonly HashSet<int> _refused = [];

    /// <summary>The sandbox's id range (user namespace), which SbxFuse maps ids through; null without one.</summary>
    public IdRange? Ids { get; set; }

    /// <summary>The file systems of workspaces with a quota (mounted on their directories before SbxFuse starts).</summary>
    private readonly WorkspaceVolumes _volumes = new(layout, logger);

    private string MountsDir => Path.Combine(layout.BindsDir, "mounts");

    private string FsDir => Path.Combine(layout.StateDir, "fs");

    public string Target(int i) => Path.Combine(MountsDir, i.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private string PidFile(int i) => Path.Combine(FsDir, $"sbxfuse-{i}.pid");

    private string ControlSocket(int i) => Path.Combine(FsDir, $"sbxfuse-{i}.sock");

    private string AclFile(int i) => Path.Combine(FsDir, $"acls-{i}.json");

    /// <summary>
    /// New rules for workspace <paramref name="i"/>: written to the spec (a restarted Sbxd or SbxFuse
    /// keeps them) and, when its SbxFuse is serving, applied over its control socket without a remount.
    /// Returns whether they are live now.
    /// </summary>
    public async Task<bool> SetAclsAsync(int i, IEnumerable<Hive.Protos.V1.FsAclRule> rules, CancellationToken cancellationToken)
    {
        var spec = layout.Spec.Mounts[i];
        var request = new Hive.Protos.V1.SetAclsRequest();
        request.Rules.AddRange(rules);
        if (IsServed(i))
        {
            using var control = Hive.Wire.GrpcChannel.ForUnixSocket(ControlSocket(i));
            await control.UnaryAsync<Hive.Protos.V1.SetAclsRequest, Hive.Protos.V1.SetAclsResponse>(
                "/hive.v1.FsControl/SetAcls", request, new Hive.Wire.CallOptions(TimeSpan.FromSeconds(10), cancellationToken));
        }

        spec.Acls.Clear();
        spec.Acls.AddRange(request.Rules);
        await WriteAclFileAsync(i, cancellationToken);
        await SaveSpecAsync(cancellationToken);
        return IsServed(i);
    }

    private async Task SaveSpecAsync(CancellationToken cancellationToken)
    {
        var temp = layout.SpecFile + ".new";
        await File.WriteAllBytesAsync(temp, Google.Protobuf.MessageExtensions.ToByteArray(layout.Spec), cancellationToken);
        File.Move(temp, layout.SpecFile, overwrite: true);
    }

    private Task WriteAclFileAsync(int i, CancellationToken cancellationToken) =>
        File.WriteAllTextAsync(AclFile(i), JsonSerializer.Serialize(layout.Spec.Mounts[i].Acls.Select(a => new { path = a.Path, access = a.Access })), cancellationToken);

    /// <summary>OCI mounts for the container's config.</summary>
    public IEnumerable<(string Destination, string Source)> ContainerMounts() =>
        layout.Spec.Mounts.Select((m, i) => (m.Mount, Target(i)));

    /// <summary>Creates the bare mount points (read-only shared binds of themselves) the container binds.</summary>
    public void PrepareTargets()
    {
        for (var i = 0; i < layout.Spec.Mounts.Count; i++)
        {
            var target = Target(i);
            if (Libc.IsMountPoint(target))
            {
                continue;
            }

            Directory.CreateDirectory(target);
            if (Libc.mount(target, target, "none", Libc.MS_BIND, null) != 0 ||
                Libc.mount("none", target, "none", Libc.MS_BIND | Libc.MS_REMOUNT | Libc.MS_RDONLY, null) != 0 ||
                Libc.mount("none", target, "none", Libc.MS_SHARED, null) != 0)
            {
                throw SyscallException.FromLastError("mount(bind, ro, shared)", target);
            }
        }
    }

    /// <summary>
    /// Before a new container is created: stop every SbxFuse and take its FUSE mount off the mount
    /// point, so runc binds the bare shared mount (the FUSE mounts are then made again, and propagate).
    /// </summary>
    public void Detach()
    {
        TearDown();
        for (var i = 0; i < layout.Spec.Mounts.Count; i++)
        {
            while (FuseMountedAt(Target(i)))
            {
                if (Libc.umount2(Target(i), Libc.MNT_DETACH) != 0)
                {
                    throw SyscallException.FromLastError("umount2", Target(i));
                }
            }
        }
    }

    /// <summary>Serves every workspace; one whose root was refused stays unserved (and makes this throw, after the others are up).</summary>
    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        var refused = new List<string>();
        for (var i = 0; i < layout.Spec.Mounts.Count; i++)
        {
            try
            {
                await EnsureOneAsync(i, cancellationToken);
            }
            catch (WorkspaceRootException ex)
            {
                refused.Add(ex.Message);
            }
        }

        if (refused.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", refused));
        }
    }

    private async Task EnsureOneAsync(int i, CancellationToken cancellationToken)
    {
        var spec = layout.Spec.Mounts[i];
        var target = Target(i);
        Directory.CreateDirectory(FsDir);
        if (IsServed(i))
        {
            LogAdopted(logger, spec.Mount);
            return;
        }

        // A FUSE mount whose server died answers ENOTCONN to everything: detach it first.
        while (FuseMountedAt(target))
        {
            if (Libc.umount2(target, Libc.MNT_DETACH) != 0)
            {
                throw SyscallException.FromLastError("umount2", target);
            }
        }

        PrepareTargets();
        await WriteAclFileAsync(i, cancellationToken);
        File.Delete(PidFile(i));

        if (WorkspaceVolumes.HasQuota(spec))
        {
            try
            {
                await _volumes.EnsureAsync(spec, cancellationToken);
            }
            catch (WorkspaceRootException ex)
            {
                Refuse(i, ex);
                throw;
            }
        }

        // SbxFuse gets the root as descriptor 3, opened and checked here (WorkspaceRoot), never a path.
        var root = OpenRoot(i);
        try
        {
            if (_learned)
            {
                await SaveSpecAsync(cancellationToken);
                _learned = false;
            }

            var exit = await DescriptorSpawn.RunAsync(
                ["/bin/sh", "-c", "exec setsid -f \"$0\" --source-fd 3 --source-id \"$1\" --target \"$2\" --mount \"$3\" --spool \"$4\" --source-name \"fs-$9\" --acls \"$5\" --pid-file \"$6\" --control \"$8\" --cache-timeout \"${10}\" --id-map \"${11}\" >>\"$7\" 2>&1 </dev/null",
                    layout.Spec.SbxfusePath, SourceId(root, spec), target, spec.Mount, layout.SpoolDir, AclFile(i), PidFile(i), Path.Combine(FsDir, $"sbxfuse-{i}.log"), ControlSocket(i), i.ToString(System.Globalization.CultureInfo.InvariantCulture), spec.Shared ? "0" : "60",
                    Ids is { } ids ? FormattableString.Invariant($"{ids.Base}:{IdRange.Size}") : "none"],
                root,
                cancellationToken);
            if (exit != 0)
            {
                throw new InvalidOperationException($"starting hive-sbxfuse failed (exit {exit})");
            }
        }
        finally
        {
            Libc.close(root);
        }

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!IsServed(i))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"hive-sbxfuse for {spec.Mount} did not mount: " + LogTail.Of(Path.Combine(FsDir, $"sbxfuse-{i}.log")));
            }

            await Task.Delay(20, cancellationToken);
        }

        LogMounted(logger, spec.Mount, spec.Source);
    }

    private bool _learned;

    /// <summary>
    /// What SbxFuse checks its descriptor against: the recorded directory's identity, or for a workspace
    /// with a quota the root of its mounted file system (whose device number is new at every mount;
    /// <see cref="WorkspaceVolumes.OpenRoot"/> has just checked it).
    /// </summary>
    private static string SourceId(int root, Hive.Protos.V1.FsMount spec) =>
        WorkspaceVolumes.HasQuota(spec) && Libc.TryIdentity(root, out var device, out var inode)
            ? FormattableString.Invariant($"{device}:{inode}")
            : FormattableString.Invariant($"{spec.SourceDev}:{spec.SourceIno}");

    /// <summary>
    /// The root of workspace <paramref name="i"/>, checked; a refusal is logged and recorded once
    /// (an <c>fs.mount</c> event with decision deny) and the workspace is left to the watchdog no more.
    /// </summary>
    private int OpenRoot(int i)
    {
        var spec = layout.Spec.Mounts[i];
        try
        {
            if (WorkspaceVolumes.HasQuota(spec))
            {
                var volume = WorkspaceVolumes.OpenRoot(spec);
                _refused.Remove(i);
                return volume;
            }

            var fd = WorkspaceRoot.Open(spec, out var learned);
            _learned |= learned;
            _refused.Remove(i);
            return fd;
        }
        catch (WorkspaceRootException ex)
        {
            Refuse(i, ex);
            throw;
        }
    }

    private void Refuse(int i, WorkspaceRootException ex)
    {
        var spec = layout.Spec.Mounts[i];
        if (_refused.Add(i))
        {
            LogRootRefused(logger, spec.Mount, ex.Message);
            RecordRefusal(spec, ex);
        }
    }

    /// <summary>On destroy, once every SbxFuse has stopped: the file systems of workspaces with a quota are unmounted (their images stay).</summary>
    public Task UnmountVolumesAsync(List<string> problems, CancellationToken cancellationToken) => _volumes.UnmountAsync(problems, cancellationToken);

    /// <summary>Bytes and inodes each workspace with a quota uses.</summary>
    public IEnumerable<Hive.Protos.V1.DiskUsage> DiskUsage() => _volumes.Usage();

    /// <summary>Through a spool of its own, like any producer: Sbxd ingests it into the sandbox's log.</summary>
    private void RecordRefusal(Hive.Protos.V1.FsMount spec, WorkspaceRootException ex)
    {
        try
        {
            using var spool = new Hive.Events.Spool.SpoolWriter(layout.SpoolDir, "sbxd-fs");
            var recorded = spool.TryAppend(new Hive.Protos.V1.Event
            {
                TsUnixUs = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10,
                Kind = "fs.mount",
                Decision = "deny",
                Fs = new Hive.Protos.V1.FsEvent { Op = "mount", Mount = spec.Mount, Path = spec.Mount, Target = spec.Source, Errno = ex.Errno },
            });
            if (!recorded)
            {
                LogRefusalNotRecorded(logger, spec.Mount);
            }
        }
        catch (IOException io)
        {
            LogRefusalNotRecorded(logger, spec.Mount + ": " + io.Message);
        }
    }

    /// <summary>SbxFuse of mount <paramref name="i"/> is alive and its FUSE mount is in place.</summary>
    public bool IsServed(int i) =>
        File.Exists(PidFile(i)) && int.TryParse(File.ReadAllText(PidFile(i)).Trim(), out var pid) && ProcFs.IsAlive(pid) && FuseMountedAt(Target(i));

    /// <summary>True when some workspace lost its SbxFuse (its mount in the container is dead).</summary>
    public bool AnyDown() => Enumerable.Range(0, layout.Spec.Mounts.Count).Any(i => !_refused.Contains(i) && !IsServed(i));

    /// <summary>
    /// Stops every SbxFuse: first a graceful drain over its control socket (open files are fsync'ed,
    /// then it unmounts and exits), SIGTERM if that does not answer, SIGKILL as the last resort.
    /// </summary>
    public void TearDown()
    {
        for (var i = 0; i < layout.Spec.Mounts.Count; i++)
        {
            if (File.Exists(PidFile(i)) && int.TryParse(File.ReadAllText(PidFile(i)).Trim(), out var pid) && ProcFs.IsAlive(pid))
            {
                try
                {
                    using var control = Hive.Wire.GrpcChannel.ForUnixSocket(ControlSocket(i));
                    control.UnaryAsync<Hive.Protos.V1.DrainRequest, Hive.Protos.V1.DrainResponse>(
                        "/hive.v1.FsControl/Drain", new Hive.Protos.V1.DrainRequest(), new Hive.Wire.CallOptions(TimeSpan.FromSeconds(5))).GetAwaiter().GetResult();
                    for (var wait = 0; wait < 100 && ProcFs.IsAlive(pid); wait++)
                    {
                        Thread.Sleep(20);
                    }
                }
                catch (Exception ex) when (ex is Hive.Wire.RpcException or IOException or System.Net.Http.HttpRequestException or TimeoutException or OperationCanceledException)
                {
                    LogDrainFailed(logger, spec: layout.Spec.Mounts[i].Mount, ex.Message);
                }

                if (ProcFs.IsAlive(pid))
                {
                    Libc.kill(pid, Libc.SIGTERM);
                }

                for (var wait = 0; wait < 100 && ProcFs.IsAlive(pid); wait++)
                {
                    Thread.Sleep(20);
                }

                if (ProcFs.IsAlive(pid))
                {
                    Libc.kill(pid, Libc.SIGKILL);
                }
            }
        }
    }

    private static bool FuseMountedAt(string target) =>
        File.ReadLines("/proc/self/mountinfo").Any(l => l.Split(' ') is { Length: > 8 } f && f[4] == target && l.Contains(" - fuse", StringComparison.Ordinal));

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Workspace {Mount} served from {Source}")]
    private static partial void LogMounted(ILogger logger, string mount, string source);

    [LoggerMessage(EventId = 32, Level = LogLevel.Warning, Message = "Workspace {Spec}: graceful drain failed ({Reason}); stopping SbxFuse with SIGTERM")]
    private static partial void LogDrainFailed(ILogger logger, string spec, string reason);

    [LoggerMessage(EventId = 33, Level = LogLevel.Error, Message = "Workspace {Mount} refused: {Reason}")]
    private static partial void LogRootRefused(ILogger logger, string mount, string reason);

    [LoggerMessage(EventId = 34, Level = LogLevel.Error, Message = "Workspace {Mount}: the refusal could not be recorded as an event")]
    private static partial void LogRefusalNotRecorded(ILogger logger, string mount);

    [LoggerMessage(EventId = 31, Level = LogLevel.Information, Message = "Adopted workspace {Mount}")]
    private static partial void LogAdopted(ILogger logger, string mount);

}
