using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Hive.Controller.Sandboxes.Config;
using Microsoft.Extensions.Options;

namespace Hive.Controller.Hosting;

/// <summary>
/// Checks <see cref="ControllerSettings"/> and converts them into <see cref="ControllerOptions"/>:
/// every bad value is reported (by its flag, with what is allowed), not only the first. The
/// formats are Hive's own (seconds, sizes like <c>10g</c>, CIDRs, <c>on|off</c>, lists), which the
/// configuration binder does not read, so each is read here.
/// </summary>
internal sealed class ControllerSettingsValidator(string baseDirectory) : IValidateOptions<ControllerSettings>
{
    public ValidateOptionsResult Validate(string? name, ControllerSettings options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = new List<string>();
        Read(options, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    /// <summary>The options <paramref name="s"/> gives; a problem with any value is added to <paramref name="errors"/> (its default is kept meanwhile).</summary>
    public ControllerOptions Read(ControllerSettings s, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(s);
        var defaults = new ControllerOptions();
        var o = new ControllerOptions
        {
            ApiKey = s.ApiKey,
            Host = s.Host,
            DataDir = FullPath(s.DataDir, "--data-dir", errors) ?? defaults.DataDir,
            ImageDir = FullPath(s.ImageDir, "--image-dir", errors) ?? defaults.ImageDir,
            SbxdPath = FullPath(s.SbxdPath, "--sbxd", errors) ?? Path.GetFullPath(Path.Combine(baseDirectory, "..", "sbxd", "hive-sbxd")),
            SbxFusePath = FullPath(s.SbxfusePath, "--sbxfuse", errors) ?? Path.GetFullPath(Path.Combine(baseDirectory, "..", "sbxfuse", "hive-sbxfuse")),
            SbxProxyPath = FullPath(s.SbxproxyPath, "--sbxproxy", errors) ?? Path.GetFullPath(Path.Combine(baseDirectory, "..", "sbxproxy", "hive-sbxproxy")),
            AgentBundle = FullPath(s.AgentBundle, "--agent-bundle", errors) ?? Path.GetFullPath(Path.Combine(baseDirectory, "..", "agent-bundle")),
            EgressCaFile = FullPath(s.EgressCa, "--egress-ca", errors),
            Port = Whole(s.Port, "--port", 0, 65535, "is not a port number (0-65535)", errors) is { } port ? (int)port : defaults.Port,
            NetPool = Cidr(s.NetPool, "--net-pool", errors) ?? defaults.NetPool,
            SyntheticPool = Cidr(s.NetSynthetic, "--net-synthetic", errors) ?? defaults.SyntheticPool,
            FsRoots = FsRoots(s.FsRoots, errors),
            EgressResolve = EgressResolve(s.EgressResolve, errors),
            AllowedHosts = AllowedHosts(s.AllowedHosts, errors),
            ReaperInterval = Number(s.ReaperInterval, "--reaper-interval", double.Epsilon, 3600, errors, "is not a number of seconds in (0, 3600]") is { } reaper ? TimeSpan.FromSeconds(reaper) : defaults.ReaperInterval,
            EventsMaxBytes = Number(s.EventsMaxBytes, "--events-max-bytes", 0, 1e15, errors) is { } maxBytes ? (long)maxBytes : defaults.EventsMaxBytes,
            EventsMaxAge = Number(s.EventsMaxAge, "--events-max-age", 0, 1e10, errors) is { } maxAge ? TimeSpan.FromSeconds(maxAge) : defaults.EventsMaxAge,
            EventsBudgetBytes = Number(s.EventsBudget, "--events-budget", 0, 1e15, errors) is { } budget ? (long)budget : defaults.EventsBudgetBytes,
            EventsRate = Number(s.EventsRate, "--events-rate", 0, 1e9, errors) ?? defaults.EventsRate,
            EventsBurst = Number(s.EventsBurst, "--events-burst", 0, 1e9, errors) is { } burst ? (long)burst : defaults.EventsBurst,
            EventsAggregate = Number(s.EventsAggregate, "--events-aggregate", 0, 3600, errors) is { } aggregate ? TimeSpan.FromSeconds(aggregate) : defaults.EventsAggregate,
            EventsHeartbeat = Number(s.EventsHeartbeat, "--events-heartbeat", 0.1, 3600, errors) is { } heartbeat ? TimeSpan.FromSeconds(heartbeat) : defaults.EventsHeartbeat,
            UsageInterval = Number(s.UsageInterval, "--usage-interval", 0.2, 3600, errors) is { } usage ? TimeSpan.FromSeconds(usage) : defaults.UsageInterval,
            AnalyticsInterval = Number(s.AnalyticsInterval, "--analytics-interval", 0.2, 3600, errors) is { } analytics ? TimeSpan.FromSeconds(analytics) : defaults.AnalyticsInterval,
            AnalyticsRetention = Number(s.AnalyticsRetention, "--analytics-retention", 1, 1e10, errors) is { } retention ? TimeSpan.FromSeconds(retention) : defaults.AnalyticsRetention,
            DefaultDiskBytes = Size(s.DefaultDisk, "--default-disk", errors) ?? defaults.DefaultDiskBytes,
            DefaultWorkspaceQuotaBytes = Size(s.DefaultWorkspaceQuota, "--default-workspace-quota", errors) ?? defaults.DefaultWorkspaceQuotaBytes,
            DiskInodesPerGiB = Whole(s.DiskInodesPerGib, "--disk-inodes-per-gib", 1024, 1 << 20, "is not a whole number in [1024, 1048576]", errors) ?? defaults.DiskInodesPerGiB,
        };

        // Mapped names are checked like any other: an address outside --egress-allow-cidr is refused
        // at connect time, whoever mapped it (fail closed).
        if (s.EgressAllowCidr is { } allowCidrs)
        {
            var cidrErrors = new List<string>();
            var networks = Hive.Policy.Net.UpstreamAddressPolicy.ParseCidrs(allowCidrs, cidrErrors);
            errors.AddRange(cidrErrors.Select(e => "--egress-allow-cidr: " + e));
            o = o with { EgressAllowCidrs = networks.Select(n => n.ToString()).Distinct(StringComparer.Ordinal).ToList() };
        }

        if (o.EgressCaFile is { } caFile && !File.Exists(caFile))
        {
            errors.Add($"--egress-ca: '{caFile}' does not exist");
        }

        o = UserNamespaces(o, s, errors);

        if (o.ApiKey is { Length: < 8 })
        {
            errors.Add("--api-key: must be at least 8 characters");
        }

        if (o.Host is { } host)
        {
            if (!IPAddress.TryParse(host, out var address))
            {
                errors.Add($"--host: '{host}' is not an IP address");
            }
            else if (o.ApiKey is null && !IPAddress.IsLoopback(address))
            {
                errors.Add($"--host: refusing to listen on {host} without an API key; set --api-key or HIVEBOX_API_KEY");
            }
        }

        return o;
    }

    private static string? FullPath(string? text, string flag, List<string> errors)
    {
        if (text is null)
        {
            return null;
        }

        if (text.Length == 0 || text.Contains('\0', StringComparison.Ordinal))
        {
            errors.Add($"{flag}: '{text}' is not a path");
            return null;
        }

        return Path.GetFullPath(text);
    }

    private static long? Whole(string? text, string flag, long min, long max, string problem, List<string> errors)
    {
        if (text is null)
        {
            return null;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        errors.Add($"{flag}: '{text}' {problem}");
        return null;
    }

    private static double? Number(string? text, string flag, double min, double max, List<string> errors, string? problem = null)
    {
        if (text is null)
        {
            return null;
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }

        errors.Add($"{flag}: '{text}' {problem ?? $"is not a number in [{min}, {max}]"}");
        return null;
    }

    private static long? Size(string? text, string flag, List<string> errors)
    {
        if (text is null)
        {
            return null;
        }

        if (MemorySize.TryParse(text, out var bytes) && bytes >= SandboxConfigValidator.MinDiskBytes)
        {
            return bytes;
        }

        errors.Add($"{flag}: '{text}' is not a size of at least {MemorySize.Format(SandboxConfigValidator.MinDiskBytes)} (e.g. 10g)");
        return null;
    }

    /// <summary>An IPv4 CIDR between /8 and /28 (sandbox /30s and synthetic addresses are cut from it).</summary>
    private static string? Cidr(string? text, string flag, List<string> errors)
    {
        if (text is null)
        {
            return null;
        }

        var parts = text.Split('/');
        if (parts.Length == 2 && IPAddress.TryParse(parts[0], out var a) && a.AddressFamily == AddressFamily.InterNetwork &&
            int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) && prefix is >= 8 and <= 28)
        {
            return text;
        }

        errors.Add($"{flag}: '{text}' is not an IPv4 CIDR between /8 and /28");
        return null;
    }

    private static List<string> FsRoots(string? text, List<string> errors)
    {
        var roots = (text ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (roots.FirstOrDefault(r => !r.StartsWith('/') || r == "/") is { } bad)
        {
            errors.Add($"--fs-roots: '{bad}' must be an absolute directory other than '/'");
            return [];
        }

        return [.. roots.Select(r => Path.GetFullPath(r).TrimEnd('/'))];
    }

    private static Dictionary<string, string> EgressResolve(string? text, List<string> errors)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in (text ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = entry.Split('=', 2);
            if (kv.Length == 2 && Hive.Policy.Net.EgressPolicy.IsValidHostName(kv[0].ToLowerInvariant()) && IPAddress.TryParse(kv[1], out var address)
                && (address.AddressFamily == AddressFamily.InterNetwork || (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId == 0)))
            {
                map[kv[0].ToLowerInvariant()] = address.ToString();
            }
            else
            {
                errors.Add($"--egress-resolve: '{entry}' is not NAME=IP");
            }
        }

        return map;
    }

    private static List<string> AllowedHosts(string? text, List<string> errors)
    {
        var names = (text ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(n => n.ToLowerInvariant()).ToList();
        foreach (var bad in names.Where(n => !IsHostPattern(n)))
        {
            errors.Add($"--allowed-hosts: '{bad}' is not a host name, IPv4 address, [IPv6] address or *.domain (no scheme, no port)");
        }

        return names;
    }

    /// <summary>
    /// <c>--userns</c>, <c>--userns-base</c>, <c>--userns-ranges</c>: the pool must lie within 32-bit ids
    /// (the last, 2^32 − 1, means "no id" to the kernel), above every 16-bit id, aligned to whole
    /// ranges, and clear of the host's users, groups and subordinate ranges.
    /// </summary>
    private static ControllerOptions UserNamespaces(ControllerOptions options, ControllerSettings s, List<string> errors)
    {
        switch (s.Userns?.ToLowerInvariant())
        {
            case null:
                break;
            case "on" or "true" or "1":
                options = options with { UserNamespaces = true };
                break;
            case "off" or "false" or "0":
                options = options with { UserNamespaces = false };
                break;
            default:
                errors.Add($"--userns: '{s.Userns}' is not on or off");
                break;
        }

        var count = errors.Count;
        if (Whole(s.UsernsBase, "--userns-base", 65536, uint.MaxValue, "is not a multiple of 65536 between 65536 and 4294901760", errors) is { } idBase)
        {
            if (idBase % 65536 == 0)
            {
                options = options with { UsernsBase = (uint)idBase };
            }
            else
            {
                errors.Add($"--userns-base: '{s.UsernsBase}' is not a multiple of 65536 between 65536 and 4294901760");
            }
        }

        if (Whole(s.UsernsRanges, "--userns-ranges", 1, 65535, "is not a number between 1 and 65535", errors) is { } ranges)
        {
            options = options with { UsernsRanges = (int)ranges };
        }

        var valid = errors.Count == count;
        var end = options.UsernsBase + ((ulong)options.UsernsRanges * 65536);
        if (valid && end > uint.MaxValue)
        {
            errors.Add($"--userns-base/--userns-ranges: the pool {options.UsernsBase}-{end - 1} goes beyond the last usable id {uint.MaxValue - 1}");
        }
        else if (valid && options.UserNamespaces)
        {
            errors.AddRange(HostIds.Overlaps(options.UsernsBase, end).Select(o => $"--userns-base: the pool {options.UsernsBase}-{end - 1} overlaps the host's ids ({o})"));
        }

        return options;
    }

    /// <summary>A Host-header pattern: a DNS name (optionally <c>*.</c> for its subdomains), an IPv4 address or a bracketed IPv6 address.</summary>
    private static bool IsHostPattern(string name)
    {
        if (name.StartsWith('[') && name.EndsWith(']'))
        {
            return IPAddress.TryParse(name[1..^1], out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6;
        }

        var domain = name.StartsWith("*.", StringComparison.Ordinal) ? name[2..] : name;
        return domain.Length is > 0 and <= 253 && domain.Split('.').All(label =>
            label.Length is > 0 and <= 63 && label[0] != '-' && label[^1] != '-' && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));
    }
}
