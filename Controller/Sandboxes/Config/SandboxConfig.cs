using System.Text.Json;

namespace Hive.Controller.Sandboxes.Config;

/// <summary>A validated, normalized sandbox configuration (what a create request means). Persisted as JSON.</summary>
internal sealed record SandboxConfig
{
    public required string Name { get; init; }

    public string Image { get; init; } = "base";

    public long MemoryBytes { get; init; } = 512L << 20;

    public double Cpus { get; init; } = 1.0;

    public int Pids { get; init; } = 128;

    public string Network { get; init; } = "none";

    public int TimeoutSeconds { get; init; } = 3600;

    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();

    public IReadOnlyList<string>? Skills { get; init; }

    public JsonElement? CustomMcps { get; init; }

    public string? LlmBaseUrl { get; init; }

    public string? LlmApiKey { get; init; }

    public string? LlmModel { get; init; }

    public IReadOnlyList<FsMountConfig> Fs { get; init; } = [];

    /// <summary>The egress policy as JSON (validated); null = every host allowed (network isolated/shared only).</summary>
    public string? Egress { get; init; }

    /// <summary>Network shared: the group.</summary>
    public string? Group { get; init; }

    /// <summary>Network shared: ports the group's other members may connect to (null = none).</summary>
    public IReadOnlyList<int>? Expose { get; init; }

    public string Memory => MemorySize.Format(MemoryBytes);

    /// <summary>Size of the writable layer's file system (<c>disk</c>); 0 = none (a sandbox made before disk quotas).</summary>
    public long DiskBytes { get; init; }

    /// <summary>Inodes of that file system.</summary>
    public long DiskInodes { get; init; }

    public string? Disk => DiskBytes > 0 ? MemorySize.Format(DiskBytes) : null;

    /// <summary>/dev/shm: min(memory / 2, 64 MiB) — tmpfs pages count against the memory limit too.</summary>
    public long ShmBytes => Math.Min(MemoryBytes / 2, 64L << 20) / 4096 * 4096;
}

/// <summary>
/// A validated workspace mount: where the sandbox sees it and its rules (in order). <c>Quota</c>: as
/// requested, null when not given; once the sandbox exists, the quota it has (bytes, with
/// <c>QuotaInodes</c>), 0 for a plain directory without one (a shared root, or a local workspace made
/// before quotas).
/// </summary>
internal sealed record FsMountConfig(string Backend, string Mount, IReadOnlyList<FsAclConfig>? Acls, string? Root = null, long? Quota = null, long? QuotaInodes = null);

internal sealed record FsAclConfig(string Path, string Access);
