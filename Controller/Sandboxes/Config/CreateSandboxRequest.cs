using System.Text.Json;

namespace Hive.Controller.Sandboxes.Config;

/// <summary>The body of <c>POST/PUT /api/v1/hiveboxes</c> as sent (seed 003 fields, all optional).</summary>
internal sealed record CreateSandboxRequest
{
    public static readonly CreateSandboxRequest Empty = new();

    public string? Name { get; init; }

    public string? Image { get; init; }

    /// <summary>"512m"-style string or a number of bytes.</summary>
    public JsonElement? Memory { get; init; }

    public double? Cpus { get; init; }

    /// <summary>Size of the sandbox's writable layer (every file it changes or adds, /tmp included), like memory: "10g" or bytes.</summary>
    public JsonElement? Disk { get; init; }

    public long? Pids { get; init; }

    public string? Network { get; init; }

    public long? Timeout { get; init; }

    public List<string>? Skills { get; init; }

    public JsonElement? CustomMcps { get; init; }

    public string? LlmBaseUrl { get; init; }

    public string? LlmApiKey { get; init; }

    public string? LlmModel { get; init; }

    public Dictionary<string, string>? Env { get; init; }

    /// <summary>Governed workspace mounts (SbxFuse).</summary>
    public List<FsMountRequest>? Fs { get; init; }

    /// <summary>Egress rules (SbxProxy): <c>{"allow": [...], "deny": [...]}</c>; implies network isolated.</summary>
    public JsonElement? Egress { get; init; }

    /// <summary>Network shared: sandboxes of the same group reach each other as &lt;name&gt;.hive. Default "default".</summary>
    public string? Group { get; init; }

    /// <summary>Network shared: the ports the group's other members may connect to. Default none.</summary>
    public List<long>? Expose { get; init; }
}

internal sealed record FsMountRequest
{
    /// <summary>Only "local" so far (the default).</summary>
    public string? Backend { get; init; }

    public string? Mount { get; init; }

    /// <summary>
    /// A host directory to serve instead of the sandbox's own workspace, so several sandboxes can
    /// share one (e.g. a coordinator reading every agent's findings read-only). Must lie under a
    /// directory the operator allows (<c>--fs-roots</c> / <c>HIVE_FS_ROOTS</c>).
    /// </summary>
    public string? Root { get; init; }

    /// <summary>Omitted: the whole mount is read-write.</summary>
    public List<FsAclRequest>? Acls { get; init; }

    /// <summary>A local workspace's size ("2g" or bytes; with an inode limit in proportion). Not for a shared root.</summary>
    public JsonElement? Quota { get; init; }
}

internal sealed record FsAclRequest
{
    public string? Path { get; init; }

    public string? Access { get; init; }
}

/// <summary>The body of <c>PATCH /api/v1/hiveboxes/:id</c>: new ACL rules for existing workspaces, applied live.</summary>
internal sealed record UpdateSandboxRequest
{
    public static readonly UpdateSandboxRequest Empty = new();

    public List<FsMountRequest>? Fs { get; init; }

    /// <summary>A new egress policy, applied live (open connections follow on their next request).</summary>
    public JsonElement? Egress { get; init; }
}
