using Hive.Controller.Sandboxes.Store;

namespace Hive.Controller.Api;

/// <summary>Response shapes of seed 003 (snake_case on the wire). Extra fields only add to the documented ones.</summary>
internal static class SandboxViews
{
    public static SandboxDetail Detail(SandboxRecord record, DateTimeOffset now, LiveUsage? usage = null) => new(
        record.Name,
        record.Status,
        record.Config.Image,
        Iso(record.CreatedAt),
        UptimeSeconds(record, now),
        new NetworkView(record.Config.Network, record.Ip, record.Config.Egress is null ? null : EgressView(record.Config.Egress), record.Config.Group, record.Config.Group is null ? null : record.Config.Expose ?? []),
        new LimitsView(record.Config.Memory, record.Config.Cpus, record.Config.Pids, record.Config.Disk, record.Config.DiskBytes > 0 ? record.Config.DiskInodes : null),
        Iso(record.ExpiresAt),
        TtlSeconds(record, now),
        record.CommandsExecuted,
        record.Error,
        usage,
        record.Config.Fs.Select(m => new FsView(
            m.Backend,
            m.Mount,
            (m.Acls ?? [new(m.Mount + "/**", "rw")]).Select(a => new FsAclView(a.Path, a.Access)).ToList(),
            m.Root,
            m.Quota is > 0 ? Hive.Controller.Sandboxes.Config.MemorySize.Format(m.Quota.Value) : null,
            m.Quota is > 0 ? m.QuotaInodes : null)).ToList(),
        Url(record.Name),
        McpUrl(record.Name),
        record.IdBase is { } idBase ? new UserNamespaceView(idBase, idBase, 65536) : null);

    public static SandboxSummary Summary(SandboxRecord record, DateTimeOffset now) => new(
        record.Name,
        record.Status,
        record.Config.Image,
        UptimeSeconds(record, now),
        TtlSeconds(record, now),
        record.Config.Memory,
        record.Config.Cpus,
        record.Config.Pids,
        record.CommandsExecuted,
        record.Config.Network,
        Iso(record.CreatedAt),
        Iso(record.ExpiresAt),
        record.Error,
        Url(record.Name),
        McpUrl(record.Name),
        record.Config.Disk);

    /// <summary>Port 8080 of the sandbox through the Controller (the default image's MCP server; any port works the same way).</summary>
    public static string Url(string name) => $"/api/v1/hiveboxes/{name}/proxy/8080/";

    /// <summary>The policy as given (absent: a networked sandbox without rules reaches every host, audited).</summary>
    private static System.Text.Json.JsonElement EgressView(string egress)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(egress);
        return doc.RootElement.Clone();
    }

    /// <summary>The sandbox's MCP endpoint (Streamable HTTP).</summary>
    public static string McpUrl(string name) => $"/api/v1/hiveboxes/{name}/mcp";

    private static long UptimeSeconds(SandboxRecord record, DateTimeOffset now) => Math.Max(0, (long)(now - record.CreatedAt).TotalSeconds);

    private static long TtlSeconds(SandboxRecord record, DateTimeOffset now) => Math.Max(0, (long)Math.Ceiling((record.ExpiresAt - now).TotalSeconds));

    private static string Iso(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A sandbox's network; <c>expose</c> (shared only) lists the ports the group's other members may connect to.</summary>
internal sealed record NetworkView(string Mode, string? Ip, System.Text.Json.JsonElement? Egress = null, string? Group = null, IReadOnlyList<int>? Expose = null);

/// <summary>The sandbox's limits; <c>disk</c> (and its inode count) is absent for a sandbox made before disk quotas.</summary>
internal sealed record LimitsView(string Memory, double Cpus, int Pids, string? Disk = null, long? DiskInodes = null);

/// <summary>What the sandbox uses now; disk figures come from its file systems (data and inodes in use).</summary>
internal sealed record LiveUsage(
    ulong MemoryUsageBytes,
    ulong CpuUsageNs,
    uint PidsCurrent,
    ulong OomKills,
    ulong? DiskUsedBytes = null,
    ulong? DiskUsedInodes = null,
    IReadOnlyList<WorkspaceUsageView>? Workspaces = null)
{
    public static LiveUsage From(Hive.Protos.V1.SandboxStatus live) => new(
        live.MemoryUsageBytes,
        live.CpuUsageNs,
        live.PidsCurrent,
        live.OomKills,
        live.DiskLimitBytes > 0 ? live.DiskUsedBytes : null,
        live.DiskLimitBytes > 0 ? live.DiskUsedInodes : null,
        live.Workspaces.Count > 0 ? live.Workspaces.Select(w => new WorkspaceUsageView(w.Mount, w.Bytes, w.LimitBytes, w.Inodes, w.LimitInodes)).ToList() : null);
}

/// <summary>A workspace with a quota: bytes and inodes in use against its quota.</summary>
internal sealed record WorkspaceUsageView(string Mount, ulong UsedBytes, ulong QuotaBytes, ulong UsedInodes, ulong QuotaInodes);

internal sealed record SandboxDetail(
    string Id,
    string Status,
    string Image,
    string CreatedAt,
    long UptimeSeconds,
    NetworkView Network,
    LimitsView Limits,
    string ExpiresAt,
    long TtlSeconds,
    long CommandsExecuted,
    string? Error,
    LiveUsage? Usage,
    IReadOnlyList<FsView> Fs,
    string Url,
    string McpUrl,
    UserNamespaceView? UserNamespace);

/// <summary>
/// The sandbox's user namespace: in-sandbox uid (gid) u is host uid (gid) <c>uid_base</c> + u
/// (<c>gid_base</c> + u), for u below <c>size</c>. Null: the sandbox runs without one.
/// </summary>
internal sealed record UserNamespaceView(uint UidBase, uint GidBase, uint Size);

/// <summary>A workspace as configured; omitted ACLs show as the default they stand for. <c>quota</c>: absent for a workspace without one (shared, or made before quotas).</summary>
internal sealed record FsView(string Backend, string Mount, IReadOnlyList<FsAclView> Acls, string? Root, string? Quota = null, long? QuotaInodes = null);

internal sealed record FsAclView(string Path, string Access);

internal sealed record SandboxSummary(
    string Id,
    string Status,
    string Image,
    long UptimeSeconds,
    long TtlSeconds,
    string Memory,
    double Cpus,
    int Pids,
    long CommandsExecuted,
    string Network,
    string CreatedAt,
    string ExpiresAt,
    string? Error,
    string Url,
    string McpUrl,
    string? Disk = null);

internal sealed record SandboxList(IReadOnlyList<SandboxSummary> Sandboxes, int Total);

internal sealed record DestroyedView(string Id, string Status);

internal sealed record ExecRequestBody
{
    public string? Command { get; init; }

    /// <summary>Seconds; 0 (default) = no timeout.</summary>
    public double? Timeout { get; init; }

    public string? Cwd { get; init; }

    public Dictionary<string, string>? Env { get; init; }

    public string? Stdin { get; init; }
}

internal sealed record ExecResult(
    int ExitCode,
    string Stdout,
    string Stderr,
    long DurationMs,
    bool TimedOut,
    bool OomKilled,
    int? Signal,
    bool StdoutTruncated,
    bool StderrTruncated);

internal sealed record FileWritten(string Path, ulong Size);

internal sealed record FileEntryView(string Name, string Path, string EntryType, ulong? Size);

internal sealed record FileListView(string Path, IReadOnlyList<FileEntryView> Entries, int Total, bool Truncated);
