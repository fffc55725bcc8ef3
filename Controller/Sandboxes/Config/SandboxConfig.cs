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
}

/// <summary>A validated workspace mount: where the sandbox sees it and its rules (in order).</summary>
internal sealed record FsMountConfig(string Backend, string Mount, IReadOnlyList<FsAclConfig>? Acls, string? Root = null);

internal sealed record FsAclConfig(string Path, string Access);
