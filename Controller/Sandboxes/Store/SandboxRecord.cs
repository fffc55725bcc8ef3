using Hive.Controller.Sandboxes.Config;

namespace Hive.Controller.Sandboxes.Store;

/// <summary>A sandbox as the Controller remembers it.</summary>
internal sealed record SandboxRecord
{
    public required SandboxConfig Config { get; init; }

    public required string Status { get; init; }

    public string? Error { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required DateTimeOffset ExpiresAt { get; init; }

    public long CommandsExecuted { get; init; }

    public string? Ip { get; init; }

    /// <summary>Host id of the sandbox's root (its user namespace's range starts there); null without one.</summary>
    public uint? IdBase { get; init; }

    public string Name => Config.Name;
}

/// <summary>Lifecycle states shown as <c>status</c>.</summary>
internal static class LifecycleStatus
{
    public const string Creating = "creating";
    public const string Running = "running";
    public const string Failed = "failed";
    public const string Destroying = "destroying";
}
