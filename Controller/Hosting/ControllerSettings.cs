namespace Hive.Controller.Hosting;

/// <summary>
/// The Controller's options as configuration gives them (<see cref="ControllerConfiguration"/>:
/// flags over <c>HIVEBOX_*</c> over the older <c>HIVE_*</c> variables), bound by name and still text:
/// each is checked and converted by <see cref="ControllerSettingsValidator"/>, whose messages name
/// the flag, into <see cref="ControllerOptions"/>. Null: not given (the default applies).
/// </summary>
/// <remarks>
/// Text, not typed properties: the binder's own conversion stops at the first bad value with a
/// message naming a configuration key and a .NET type; the operator should see every bad value at
/// once, named by its flag, with what is allowed. Property names are the keys: an environment
/// variable's name without its prefix and underscores (<c>HIVEBOX_DATA_DIR</c> → <c>DataDir</c>).
/// </remarks>
internal sealed class ControllerSettings
{
    public string? ApiKey { get; set; }

    public string? Port { get; set; }

    public string? Host { get; set; }

    public string? AllowedHosts { get; set; }

    public string? DataDir { get; set; }

    public string? ImageDir { get; set; }

    public string? SbxdPath { get; set; }

    public string? SbxfusePath { get; set; }

    public string? SbxproxyPath { get; set; }

    public string? NetPool { get; set; }

    public string? NetSynthetic { get; set; }

    public string? Userns { get; set; }

    public string? UsernsBase { get; set; }

    public string? UsernsRanges { get; set; }

    public string? EgressResolve { get; set; }

    public string? EgressAllowCidr { get; set; }

    public string? EgressCa { get; set; }

    public string? AgentBundle { get; set; }

    public string? ReaperInterval { get; set; }

    public string? FsRoots { get; set; }

    public string? EventsMaxBytes { get; set; }

    public string? EventsMaxAge { get; set; }

    public string? EventsBudget { get; set; }

    public string? EventsRate { get; set; }

    public string? EventsBurst { get; set; }

    public string? EventsAggregate { get; set; }

    public string? EventsHeartbeat { get; set; }

    public string? UsageInterval { get; set; }

    public string? AnalyticsInterval { get; set; }

    public string? AnalyticsRetention { get; set; }

    public string? DefaultDisk { get; set; }

    public string? DefaultWorkspaceQuota { get; set; }

    public string? DiskInodesPerGib { get; set; }
}
