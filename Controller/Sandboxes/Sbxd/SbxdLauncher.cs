using System.Diagnostics;
using Google.Protobuf;
using Hive.Controller.Hosting;
using Hive.Controller.Sandboxes.Config;
using Hive.Protos.V1;

namespace Hive.Controller.Sandboxes.Sbxd;

/// <summary>
/// Starts one Sbxd per sandbox as an independent process: its own session (setsid), stdio to
/// <c>&lt;state&gt;/sbxd.log</c>, so it outlives the Controller (even a SIGKILL) and is re-adopted later.
/// </summary>
internal sealed partial class SbxdLauncher(ControllerOptions options, ILogger<SbxdLauncher> logger)
{
    public string StateDir(string name) => Path.Combine(options.SandboxesDir, name);

    /// <summary>Where workspaces may live, and which directory each one is (see <see cref="WorkspaceRoots"/>).</summary>
    public WorkspaceRoots Roots { get; } = new(options);

    /// <summary>The sandbox's durable event log (survives destroy; a new sandbox of the same name continues it).</summary>
    public string EventsDir(string name) => Path.Combine(options.EventsDir, name);

    /// <summary>Where the Controller hands its events (exec, ...) to the sandbox's Sbxd.</summary>
    public string SpoolDir(string name) => Path.Combine(StateDir(name), "spool");

    public string SocketPath(string name) => Path.Combine(StateDir(name), "sbxd.sock");

    /// <summary>The local backend of a workspace: keyed by sandbox name and mount, so re-creating a sandbox finds its files.</summary>
    public string WorkspaceDir(string name, string mount) =>
        Path.Combine(options.WorkspacesDir, name, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(mount)))[..16]);

    public void WriteSpec(SandboxConfig config, string imageRootfs, DateTimeOffset createdAt)
    {
        var dir = StateDir(config.Name);
        Directory.CreateDirectory(options.SandboxesDir);
        Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var spec = new SandboxSpec
        {
            Name = config.Name,
            Image = config.Image,
            MemoryBytes = (ulong)config.MemoryBytes,
            CpuMillis = (uint)Math.Max(10, Math.Round(config.Cpus * 1000)),
            Pids = (uint)config.Pids,
            Network = config.Network switch
            {
                "isolated" => NetworkMode.Isolated,
                "shared" => NetworkMode.Shared,
                _ => NetworkMode.None,
            },
            ImageRootfs = imageRootfs,
            AgentBundle = options.AgentBundle,
            CreatedAtUnixMs = createdAt.ToUnixTimeMilliseconds(),
            ShmBytes = (ulong)config.ShmBytes,
        };
        if (config.DiskBytes > 0)
        {
            spec.DiskBytes = (ulong)config.DiskBytes;
            spec.DiskInodes = (ulong)config.DiskInodes;
        }

        foreach (var (key, value) in config.Env)
        {
            spec.Env[key] = value;
        }

        spec.SbxfusePath = options.SbxFusePath;
        if (options.UserNamespaces)
        {
            spec.IdLeasesDir = options.IdLeasesDir;
            spec.IdPoolBase = options.UsernsBase;
            spec.IdPoolRanges = (uint)options.UsernsRanges;
        }

        if (spec.Network != NetworkMode.None)
        {
            spec.SbxproxyPath = options.SbxProxyPath;
            spec.EgressJson = config.Egress ?? string.Empty;
            spec.NetworkGroup = config.Group ?? string.Empty;
            spec.NetPool = options.NetPool;
            spec.NetLeasesDir = options.NetLeasesDir;
            spec.SyntheticPool = options.SyntheticPool;
            spec.SecretsDir = options.SecretsDir;
            spec.UpstreamCaFile = options.EgressCaFile ?? string.Empty;
            foreach (var (host, address) in options.EgressResolve)
            {
                spec.EgressResolve[host] = address;
            }

            spec.EgressAllowCidrs.AddRange(options.EgressAllowCidrs);
            spec.Expose.AddRange((config.Expose ?? []).Select(p => (uint)p));
        }

        spec.EventsDir = EventsDir(config.Name);
        spec.EventsMaxBytes = (ulong)options.EventsMaxBytes;
        spec.EventsMaxAgeSecs = (ulong)options.EventsMaxAge.TotalSeconds;
        spec.EventsBudgetBytes = (ulong)options.EventsBudgetBytes;
        spec.EventsRate = options.EventsRate;
        spec.EventsBurst = (ulong)options.EventsBurst;
        spec.EventsAggregateMs = (uint)options.EventsAggregate.TotalMilliseconds;
        spec.UsageIntervalMs = (uint)options.UsageInterval.TotalMilliseconds;
        foreach (var fs in config.Fs)
        {
            // Resolved (and created) here, with the directory's identity: Sbxd serves nothing else.
            var root = fs.Root is { } explicitRoot ? Roots.Resolve(explicitRoot, create: true) : Roots.ResolveLocal(WorkspaceDir(config.Name, fs.Mount));
            var mount = new FsMount
            {
                Mount = fs.Mount,
                Source = root.Path,
                SourceBeneath = root.Beneath,
                SourceDev = root.Device,
                SourceIno = root.Inode,
                Shared = fs.Root is not null,
            };
            if (fs.Root is null && fs.Quota is > 0)
            {
                // The workspace's file system: an image beside its directory, mounted on it by Sbxd.
                mount.QuotaBytes = (ulong)fs.Quota.Value;
                mount.QuotaInodes = (ulong)(fs.QuotaInodes ?? 0);
                mount.Image = root.Path + ".img";
            }

            foreach (var acl in fs.Acls ?? [new FsAclConfig(fs.Mount + "/**", "rw")])
            {
                mount.Acls.Add(new FsAclRule { Path = acl.Path, Access = acl.Access });
            }

            spec.Mounts.Add(mount);
        }
        var tmp = Path.Combine(dir, "spec.pb.tmp");
        File.WriteAllBytes(tmp, spec.ToByteArray());
        File.Move(tmp, Path.Combine(dir, "spec.pb"), overwrite: true);
    }

    /// <summary>Starts Sbxd detached; returns once it is forked (readiness is polled over its socket).</summary>
    public async Task StartAsync(string name, CancellationToken cancellationToken)
    {
        var dir = StateDir(name);
        LogStarting(logger, name, options.SbxdPath);
        // sh only sets up redirections; setsid -f forks Sbxd into its own session and returns at once.
        var exitCode = await RunAsync(
            "/bin/sh",
            ["-c", "exec setsid -f \"$0\" --state-dir \"$1\" >>\"$1/sbxd.log\" 2>&1 </dev/null", options.SbxdPath, dir],
            cancellationToken);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"could not start {options.SbxdPath} (exit {exitCode})");
        }
    }

    /// <summary>Runs <c>hive-sbxd --destroy</c> in the foreground: tears down whatever is left of a sandbox whose Sbxd is gone.</summary>
    public async Task<bool> RunDestroyAsync(string name, CancellationToken cancellationToken)
    {
        var dir = StateDir(name);
        if (!Directory.Exists(dir))
        {
            return true;
        }

        var exitCode = await RunAsync(
            "/bin/sh",
            ["-c", "exec \"$0\" --state-dir \"$1\" --destroy >>\"$1/sbxd.log\" 2>&1 </dev/null", options.SbxdPath, dir],
            cancellationToken);
        return exitCode == 0;
    }

    public string LogTail(string name, int lines = 15)
    {
        var log = Path.Combine(StateDir(name), "sbxd.log");
        try
        {
            return File.Exists(log) ? string.Join('\n', File.ReadLines(log).TakeLast(lines)) : string.Empty;
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    /// <summary>The Sbxd pid from its pid file, if that process is alive.</summary>
    public int? LivePid(string name)
    {
        var pidFile = Path.Combine(StateDir(name), "sbxd.pid");
        try
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var pid) && Directory.Exists($"/proc/{pid}"))
            {
                var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
                return cmdline.Contains("sbxd", StringComparison.Ordinal) ? pid : null;
            }
        }
        catch (IOException)
        {
        }

        return null;
    }

    private static async Task<int> RunAsync(string file, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        await process.WaitForExitAsync(cancellationToken);
        return process.ExitCode;
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Starting Sbxd for sandbox \"{Sandbox}\" ({Path})")]
    private static partial void LogStarting(ILogger logger, string sandbox, string path);
}
