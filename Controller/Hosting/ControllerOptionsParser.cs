using System.Globalization;

namespace Hive.Controller.Hosting;

/// <summary>
/// Reads options from flags (<c>--api-key K</c> or <c>--api-key=K</c>) over environment variables
/// over defaults, and reports every problem at once.
/// </summary>
internal static class ControllerOptionsParser
{
    public const string Usage = """
        hive-controller — the Hive REST API, dashboard and sandbox supervisor.

        Options (flag, environment variable, default):
          --api-key KEY       HIVEBOX_API_KEY      none: no auth, listen on 127.0.0.1 only
          --port N            HIVEBOX_PORT         7070
          --host ADDR         HIVEBOX_HOST         127.0.0.1 without a key, 0.0.0.0 with one
          --allowed-hosts H[,H] HIVEBOX_ALLOWED_HOSTS none: Host names answered besides loopback names; without a key
                              nothing else is (DNS rebinding), with one any name unless this is given; *.example.com for subdomains
          --data-dir DIR      HIVE_DATA_DIR        /var/lib/hive
          --image-dir DIR     HIVE_IMAGE_DIR       /var/cache/hive/images
          --sbxd PATH         HIVE_SBXD_PATH       ../sbxd/hive-sbxd next to this program
          --sbxfuse PATH      HIVE_SBXFUSE_PATH    ../sbxfuse/hive-sbxfuse next to this program
          --sbxproxy PATH     HIVE_SBXPROXY_PATH   ../sbxproxy/hive-sbxproxy next to this program
          --net-pool CIDR     HIVE_NET_POOL        10.213.0.0/16: where each networked sandbox's /30 comes from
          --net-synthetic CIDR HIVE_NET_SYNTHETIC  10.214.0.0/16: synthetic per-name addresses the sandbox DNS answers with
          --userns on|off     HIVE_USERNS          on: every sandbox in a user namespace of its own (root inside is nobody on the host)
          --userns-base ID    HIVE_USERNS_BASE     1073741824: host id of the first sandbox id range (65536 ids per sandbox;
                              a multiple of 65536, clear of /etc/passwd, /etc/group, /etc/subuid, /etc/subgid)
          --userns-ranges N   HIVE_USERNS_RANGES   4096: id ranges in the pool (sandboxes with a user namespace at once)
          --egress-resolve H=IP[,H=IP] HIVE_EGRESS_RESOLVE none: fixed upstream addresses for names (private names)
          --egress-allow-cidr CIDR[,CIDR] HIVEBOX_EGRESS_ALLOW_CIDR none: private/link-local/... ranges upstreams may be in
                              (loopback, metadata and host addresses only when named exactly, e.g. 127.0.0.1/32)
          --egress-ca FILE    HIVE_EGRESS_CA       none: extra CAs (PEM) trusted for upstream TLS
          --agent-bundle DIR  HIVE_AGENT_BUNDLE    ../agent-bundle next to this program
          --reaper-interval S HIVE_REAPER_INTERVAL 5 (seconds)
          --fs-roots DIR[:DIR] HIVE_FS_ROOTS     none: where a workspace's "root" may point (shared workspaces)
          --events-max-bytes N HIVE_EVENTS_MAX_BYTES 1073741824: event log size kept of a destroyed sandbox (0 = unlimited)
          --events-max-age S  HIVE_EVENTS_MAX_AGE  2592000 (30 days): events of destroyed sandboxes older are removed (0 = forever)
          --events-budget N   HIVE_EVENTS_BUDGET   1073741824: bytes of a live sandbox's log after which operations are refused (0 = unlimited)
          --events-rate N     HIVE_EVENTS_RATE     20000: events/s per sandbox beyond which its operations wait (0 = unlimited)
          --events-burst N    HIVE_EVENTS_BURST    200000: events at full speed on top of the rate
          --events-aggregate S HIVE_EVENTS_AGGREGATE 1: identical denials within S seconds become one event (0 = off)
          --events-heartbeat S HIVE_EVENTS_HEARTBEAT 15: seconds between keep-alive comments on idle SSE streams
          --usage-interval S  HIVE_USAGE_INTERVAL  5: seconds between resource.usage events
          --analytics-interval S HIVE_ANALYTICS_INTERVAL 10: seconds between /api/v1/analytics samples
          --analytics-retention S HIVE_ANALYTICS_RETENTION 604800 (7 days): analytics history kept
          --default-disk SIZE HIVE_DEFAULT_DISK    10g: a sandbox's disk (its writable layer and /tmp) when it asks for none
          --default-workspace-quota SIZE HIVE_DEFAULT_WORKSPACE_QUOTA 10g: a new local workspace's quota when it asks for none
          --disk-inodes-per-gib N HIVE_DISK_INODES_PER_GIB 65536: inodes per GiB of disk and of quota (1024-1048576)
          -h, --help
        """;

    public static (ControllerOptions? Options, IReadOnlyList<string> Errors, bool Help) Parse(
        IReadOnlyList<string> args, Func<string, string?> env, string baseDirectory)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var errors = new List<string>();
        string[] known = ["api-key", "port", "host", "allowed-hosts", "data-dir", "image-dir", "sbxd", "sbxfuse", "sbxproxy", "net-pool", "net-synthetic", "userns", "userns-base", "userns-ranges", "egress-resolve", "egress-allow-cidr", "egress-ca", "agent-bundle", "reaper-interval", "fs-roots", "events-max-bytes", "events-max-age", "events-budget", "events-rate", "events-burst", "events-aggregate", "events-heartbeat", "usage-interval", "analytics-interval", "analytics-retention", "default-disk", "default-workspace-quota", "disk-inodes-per-gib"];
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help")
            {
                return (null, [], true);
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                errors.Add($"unexpected argument '{arg}'");
                continue;
            }

            var name = arg[2..];
            string? value = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }

            if (!known.Contains(name))
            {
                errors.Add($"unknown option '--{name}'");
                continue;
            }

            if (value is null)
            {
                if (i + 1 >= args.Count)
                {
                    errors.Add($"option '--{name}' needs a value");
                    continue;
                }

                value = args[++i];
            }

            values[name] = value;
        }

        string? Get(string flag, string variable) =>
            values.TryGetValue(flag, out var v) ? v : env(variable) is { Length: > 0 } e ? e : null;

        var options = new ControllerOptions
        {
            ApiKey = Get("api-key", "HIVEBOX_API_KEY"),
            Host = Get("host", "HIVEBOX_HOST"),
            DataDir = Path.GetFullPath(Get("data-dir", "HIVE_DATA_DIR") ?? "/var/lib/hive"),
            ImageDir = Path.GetFullPath(Get("image-dir", "HIVE_IMAGE_DIR") ?? "/var/cache/hive/images"),
            SbxdPath = Path.GetFullPath(Get("sbxd", "HIVE_SBXD_PATH") ?? Path.Combine(baseDirectory, "..", "sbxd", "hive-sbxd")),
            SbxFusePath = Path.GetFullPath(Get("sbxfuse", "HIVE_SBXFUSE_PATH") ?? Path.Combine(baseDirectory, "..", "sbxfuse", "hive-sbxfuse")),
            SbxProxyPath = Path.GetFullPath(Get("sbxproxy", "HIVE_SBXPROXY_PATH") ?? Path.Combine(baseDirectory, "..", "sbxproxy", "hive-sbxproxy")),
            EgressCaFile = Get("egress-ca", "HIVE_EGRESS_CA") is { } ca ? Path.GetFullPath(ca) : null,
            AgentBundle = Path.GetFullPath(Get("agent-bundle", "HIVE_AGENT_BUNDLE") ?? Path.Combine(baseDirectory, "..", "agent-bundle")),
            FsRoots = (Get("fs-roots", "HIVE_FS_ROOTS") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(r => Path.GetFullPath(r).TrimEnd('/')).ToList(),
        };

        if (Get("port", "HIVEBOX_PORT") is { } port)
        {
            if (int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out var p) && p is >= 0 and <= 65535)
            {
                options = options with { Port = p };
            }
            else
            {
                errors.Add($"--port: '{port}' is not a port number (0-65535)");
            }
        }

        if (Get("fs-roots", "HIVE_FS_ROOTS") is { } roots && roots.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault(r => !r.StartsWith('/') || r == "/") is { } badRoot)
        {
            errors.Add($"--fs-roots: '{badRoot}' must be an absolute directory other than '/'");
        }

        foreach (var (flag, variable) in new[] { ("net-pool", "HIVE_NET_POOL"), ("net-synthetic", "HIVE_NET_SYNTHETIC") })
        {
            if (Get(flag, variable) is { } cidr)
            {
                var parts = cidr.Split('/');
                if (parts.Length == 2 && System.Net.IPAddress.TryParse(parts[0], out var a) && a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork &&
                    int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) && prefix is >= 8 and <= 28)
                {
                    options = flag == "net-pool" ? options with { NetPool = cidr } : options with { SyntheticPool = cidr };
                }
                else
                {
                    errors.Add($"--{flag}: '{cidr}' is not an IPv4 CIDR between /8 and /28");
                }
            }
        }

        options = ParseUserNamespaces(options, Get, errors);

        if (Get("egress-resolve", "HIVE_EGRESS_RESOLVE") is { } resolve)
        {
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in resolve.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var kv = entry.Split('=', 2);
                if (kv.Length == 2 && Hive.Policy.Net.EgressPolicy.IsValidHostName(kv[0].ToLowerInvariant()) && System.Net.IPAddress.TryParse(kv[1], out var address)
                    && (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork || (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && address.ScopeId == 0)))
                {
                    map[kv[0].ToLowerInvariant()] = address.ToString();
                }
                else
                {
                    errors.Add($"--egress-resolve: '{entry}' is not NAME=IP");
                }
            }

            options = options with { EgressResolve = map };
        }

        // Mapped names are checked like any other: an address outside --egress-allow-cidr is refused
        // at connect time, whoever mapped it (fail closed).
        if (Get("egress-allow-cidr", "HIVEBOX_EGRESS_ALLOW_CIDR") is { } allowCidrs)
        {
            var cidrErrors = new List<string>();
            var networks = Hive.Policy.Net.UpstreamAddressPolicy.ParseCidrs(allowCidrs, cidrErrors);
            errors.AddRange(cidrErrors.Select(e => "--egress-allow-cidr: " + e));
            options = options with { EgressAllowCidrs = networks.Select(n => n.ToString()).Distinct(StringComparer.Ordinal).ToList() };
        }

        if (options.EgressCaFile is { } caFile && !File.Exists(caFile))
        {
            errors.Add($"--egress-ca: '{caFile}' does not exist");
        }

        if (Get("reaper-interval", "HIVE_REAPER_INTERVAL") is { } interval)
        {
            if (double.TryParse(interval, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s is > 0 and <= 3600)
            {
                options = options with { ReaperInterval = TimeSpan.FromSeconds(s) };
            }
            else
            {
                errors.Add($"--reaper-interval: '{interval}' is not a number of seconds in (0, 3600]");
            }
        }

        double? Seconds(string flag, string variable, double min, double max)
        {
            if (Get(flag, variable) is not { } text)
            {
                return null;
            }

            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
            {
                return value;
            }

            errors.Add($"--{flag}: '{text}' is not a number in [{min}, {max}]");
            return null;
        }

        if (Seconds("events-max-bytes", "HIVE_EVENTS_MAX_BYTES", 0, 1e15) is { } maxBytes)
        {
            options = options with { EventsMaxBytes = (long)maxBytes };
        }

        if (Seconds("events-max-age", "HIVE_EVENTS_MAX_AGE", 0, 1e10) is { } maxAge)
        {
            options = options with { EventsMaxAge = TimeSpan.FromSeconds(maxAge) };
        }

        if (Seconds("events-budget", "HIVE_EVENTS_BUDGET", 0, 1e15) is { } budget)
        {
            options = options with { EventsBudgetBytes = (long)budget };
        }

        if (Seconds("events-rate", "HIVE_EVENTS_RATE", 0, 1e9) is { } rate)
        {
            options = options with { EventsRate = rate };
        }

        if (Seconds("events-burst", "HIVE_EVENTS_BURST", 0, 1e9) is { } burst)
        {
            options = options with { EventsBurst = (long)burst };
        }

        if (Seconds("events-aggregate", "HIVE_EVENTS_AGGREGATE", 0, 3600) is { } aggregate)
        {
            options = options with { EventsAggregate = TimeSpan.FromSeconds(aggregate) };
        }

        if (Seconds("events-heartbeat", "HIVE_EVENTS_HEARTBEAT", 0.1, 3600) is { } heartbeat)
        {
            options = options with { EventsHeartbeat = TimeSpan.FromSeconds(heartbeat) };
        }

        if (Seconds("usage-interval", "HIVE_USAGE_INTERVAL", 0.2, 3600) is { } usage)
        {
            options = options with { UsageInterval = TimeSpan.FromSeconds(usage) };
        }

        if (Seconds("analytics-interval", "HIVE_ANALYTICS_INTERVAL", 0.2, 3600) is { } analytics)
        {
            options = options with { AnalyticsInterval = TimeSpan.FromSeconds(analytics) };
        }

        if (Seconds("analytics-retention", "HIVE_ANALYTICS_RETENTION", 1, 1e10) is { } retention)
        {
            options = options with { AnalyticsRetention = TimeSpan.FromSeconds(retention) };
        }

        foreach (var (flag, variable) in new[] { ("default-disk", "HIVE_DEFAULT_DISK"), ("default-workspace-quota", "HIVE_DEFAULT_WORKSPACE_QUOTA") })
        {
            if (Get(flag, variable) is not { } text)
            {
                continue;
            }

            if (Sandboxes.Config.MemorySize.TryParse(text, out var bytes) && bytes >= Sandboxes.Config.SandboxConfigValidator.MinDiskBytes)
            {
                options = flag == "default-disk" ? options with { DefaultDiskBytes = bytes } : options with { DefaultWorkspaceQuotaBytes = bytes };
            }
            else
            {
                errors.Add($"--{flag}: '{text}' is not a size of at least {Sandboxes.Config.MemorySize.Format(Sandboxes.Config.SandboxConfigValidator.MinDiskBytes)} (e.g. 10g)");
            }
        }

        if (Get("disk-inodes-per-gib", "HIVE_DISK_INODES_PER_GIB") is { } inodesText)
        {
            if (long.TryParse(inodesText, NumberStyles.None, CultureInfo.InvariantCulture, out var perGiB) && perGiB is >= 1024 and <= 1 << 20)
            {
                options = options with { DiskInodesPerGiB = perGiB };
            }
            else
            {
                errors.Add($"--disk-inodes-per-gib: '{inodesText}' is not a whole number in [1024, 1048576]");
            }
        }

        if (options.ApiKey is { Length: < 8 })
        {
            errors.Add("--api-key: must be at least 8 characters");
        }

        if (Get("allowed-hosts", "HIVEBOX_ALLOWED_HOSTS") is { } allowedHosts)
        {
            var names = allowedHosts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(n => n.ToLowerInvariant()).ToList();
            foreach (var bad in names.Where(n => !IsHostPattern(n)))
            {
                errors.Add($"--allowed-hosts: '{bad}' is not a host name, IPv4 address, [IPv6] address or *.domain (no scheme, no port)");
            }

            options = options with { AllowedHosts = names };
        }

        if (options.Host is { } host)
        {
            if (!System.Net.IPAddress.TryParse(host, out var address))
            {
                errors.Add($"--host: '{host}' is not an IP address");
            }
            else if (options.ApiKey is null && !System.Net.IPAddress.IsLoopback(address))
            {
                errors.Add($"--host: refusing to listen on {host} without an API key; set --api-key or HIVEBOX_API_KEY");
            }
        }

        return (errors.Count == 0 ? options : null, errors, false);
    }

    /// <summary>
    /// <c>--userns</c>, <c>--userns-base</c>, <c>--userns-ranges</c>: the pool must lie within 32-bit ids
    /// (the last, 2^32 − 1, means "no id" to the kernel), above every 16-bit id, aligned to whole
    /// ranges, and clear of the host's users, groups and subordinate ranges.
    /// </summary>
    private static ControllerOptions ParseUserNamespaces(ControllerOptions options, Func<string, string, string?> get, List<string> errors)
    {
        if (get("userns", "HIVE_USERNS") is { } mode)
        {
            switch (mode.ToLowerInvariant())
            {
                case "on" or "true" or "1":
                    options = options with { UserNamespaces = true };
                    break;
                case "off" or "false" or "0":
                    options = options with { UserNamespaces = false };
                    break;
                default:
                    errors.Add($"--userns: '{mode}' is not on or off");
                    break;
            }
        }

        var valid = true;
        if (get("userns-base", "HIVE_USERNS_BASE") is { } baseText)
        {
            if (uint.TryParse(baseText, NumberStyles.None, CultureInfo.InvariantCulture, out var idBase) && idBase >= 65536 && idBase % 65536 == 0)
            {
                options = options with { UsernsBase = idBase };
            }
            else
            {
                errors.Add($"--userns-base: '{baseText}' is not a multiple of 65536 between 65536 and 4294901760");
                valid = false;
            }
        }

        if (get("userns-ranges", "HIVE_USERNS_RANGES") is { } rangesText)
        {
            if (int.TryParse(rangesText, NumberStyles.None, CultureInfo.InvariantCulture, out var ranges) && ranges is >= 1 and <= 65535)
            {
                options = options with { UsernsRanges = ranges };
            }
            else
            {
                errors.Add($"--userns-ranges: '{rangesText}' is not a number between 1 and 65535");
                valid = false;
            }
        }

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
            return System.Net.IPAddress.TryParse(name[1..^1], out var v6) && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        }

        var domain = name.StartsWith("*.", StringComparison.Ordinal) ? name[2..] : name;
        return domain.Length is > 0 and <= 253 && domain.Split('.').All(label =>
            label.Length is > 0 and <= 63 && label[0] != '-' && label[^1] != '-' && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));
    }
}
