using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hive.Client;

/// <summary>An ACL rule of a workspace: <c>*</c> within a segment, <c>**</c> across, <c>?</c> one character; access rw, ro or deny.</summary>
public sealed record AclRule(string Path, string Access);

/// <summary>A governed workspace: files persist across re-creation; every operation is audited.</summary>
public sealed record WorkspaceConfig(string Mount)
{
    public string Backend { get; init; } = "local";

    public IReadOnlyList<AclRule>? Acls { get; init; }

    /// <summary>A directory under the operator's --fs-roots, to share one workspace between sandboxes.</summary>
    public string? Root { get; init; }

    /// <summary>A local workspace's size, e.g. "2g" (inodes in proportion); default: the server's (10g), or the size an existing workspace has.</summary>
    public string? Quota { get; init; }
}

/// <summary>Everything optional: the server's defaults apply (512m, 1 cpu, 128 pids, network none, 1 h).</summary>
public sealed record SandboxConfig
{
    public string? Image { get; init; }

    public string? Memory { get; init; }

    /// <summary>Size of the sandbox's own files (its writable layer, /tmp included), e.g. "10g"; writes past it fail with ENOSPC.</summary>
    public string? Disk { get; init; }

    public double? Cpus { get; init; }

    public int? Pids { get; init; }

    public string? Network { get; init; }

    /// <summary>Seconds until the sandbox is destroyed.</summary>
    public int? Timeout { get; init; }

    public IReadOnlyDictionary<string, string>? Env { get; init; }

    public IReadOnlyList<WorkspaceConfig>? Fs { get; init; }

    /// <summary>Egress rules (implies network isolated): deny rules first, then allow; nothing matching is denied.</summary>
    public EgressPolicy? Egress { get; init; }

    /// <summary>Network shared: sandboxes of one group reach each other as &lt;name&gt;.hive.</summary>
    public string? Group { get; init; }

    /// <summary>Network shared: the ports the group's other members may connect to (&lt;name&gt;.hive:PORT). Default none.</summary>
    public IReadOnlyList<int>? Expose { get; init; }
}

/// <summary>
/// A secret as the API lists it — never its value: the hosts (names or globs) it may be sent to, and
/// whether plain HTTP is acceptable. <see cref="Error"/> is set when it is never injected (stored
/// before secrets were bound to hosts).
/// </summary>
public sealed record SecretInfo(string Name, string UpdatedAt, IReadOnlyList<string> Hosts, bool AllowHttp, string? Error = null);

/// <summary>A sandbox's egress policy.</summary>
public sealed record EgressPolicy
{
    public IReadOnlyList<EgressRule>? Allow { get; init; }

    public IReadOnlyList<EgressRule>? Deny { get; init; }
}

/// <summary>
/// One egress rule: <see cref="Host"/> is a name or glob (<c>*.pypi.org</c>); <see cref="Ports"/> omitted = any
/// port for HTTP(S) (raw TCP needs the port named); <see cref="Methods"/>/<see cref="Paths"/> narrow it to
/// requests; <see cref="Inject"/> sets headers/query values on the way out (<c>${secret:NAME}</c> expanded on the host).
/// </summary>
public sealed record EgressRule(string Host)
{
    public IReadOnlyList<int>? Ports { get; init; }

    public IReadOnlyList<string>? Methods { get; init; }

    public IReadOnlyList<string>? Paths { get; init; }

    public EgressInject? Inject { get; init; }
}

public sealed record EgressInject
{
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    public IReadOnlyDictionary<string, string>? Query { get; init; }
}

/// <summary>A sandbox as the API describes it (<see cref="Raw"/> has every field).</summary>
public sealed record SandboxInfo(string Id, string Status, string Image, string CreatedAt, string ExpiresAt, string Url, string McpUrl, string? Error)
{
    [JsonIgnore]
    public JsonElement Raw { get; init; }
}

public sealed record ExecOptions
{
    public string? Cwd { get; init; }

    public IReadOnlyDictionary<string, string>? Env { get; init; }

    /// <summary>The command's whole process group is killed when it passes.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Written to the command's stdin (then closed); <see cref="Sandbox.ExecAsync"/> only.</summary>
    public string? Stdin { get; init; }
}

/// <summary>What a finished command did. A non-zero exit code is a result, not an error.</summary>
public sealed record ExecResult(int ExitCode, string Stdout, string Stderr, long DurationMs, bool TimedOut, bool OomKilled, int? Signal)
{
    /// <summary>The command wrote more to stdout than the API returns; <see cref="Stdout"/> is its beginning.</summary>
    public bool StdoutTruncated { get; init; }

    /// <summary>The command wrote more to stderr than the API returns; <see cref="Stderr"/> is its beginning.</summary>
    public bool StderrTruncated { get; init; }
}

/// <summary>A file as written: its absolute path inside the sandbox and its size.</summary>
public sealed record WrittenFile(string Path, long Size);

/// <summary>How a streamed command ended.</summary>
public sealed record ExecExit(int ExitCode, long DurationMs, bool TimedOut, int? Signal, long StdoutBytes, long StderrBytes);

public sealed record FileEntry(string Name, string Path, string EntryType, long? Size);

/// <summary>One event of the sandbox's audit log (docs/API.md#events); <see cref="Data"/> holds every field of its kind.</summary>
public sealed record SandboxEvent(long Seq, DateTimeOffset Ts, string Sandbox, string Kind, string? Decision, JsonElement Data)
{
    /// <summary>A field of the event (<c>path</c>, <c>command</c>, <c>exit_code</c>, …) as text, or null.</summary>
    public string? this[string field] => Data.TryGetProperty(field, out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText()) : null;

    internal static SandboxEvent Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        var e = doc.RootElement.Clone();
        return new SandboxEvent(
            e.GetProperty("seq").GetInt64(),
            DateTimeOffset.Parse(e.GetProperty("ts").GetString()!, System.Globalization.CultureInfo.InvariantCulture),
            e.GetProperty("sandbox").GetString()!,
            e.GetProperty("kind").GetString()!,
            e.TryGetProperty("decision", out var d) ? d.GetString() : null,
            e);
    }
}

public sealed record EventsOptions
{
    /// <summary>Start after this sequence number (default: the beginning).</summary>
    public long? Since { get; init; }

    /// <summary>Kind prefixes: fs, exec, net.http, …</summary>
    public IReadOnlyList<string>? Kinds { get; init; }

    public string? Decision { get; init; }

    /// <summary>true (default): keep waiting for new events, reconnecting with Last-Event-ID; false: history only.</summary>
    public bool Follow { get; init; } = true;
}
