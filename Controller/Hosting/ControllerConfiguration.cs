using System.Collections;
using Microsoft.Extensions.Options;

namespace Hive.Controller.Hosting;

/// <summary>
/// Where the Controller's options come from — Microsoft.Extensions.Configuration sources, highest
/// first: command-line flags (<c>--port 7070</c> or <c>--port=7070</c>), <c>HIVEBOX_*</c>
/// environment variables, the older <c>HIVE_*</c> names of the same variables — bound to
/// <see cref="ControllerSettings"/> and validated (<see cref="ControllerSettingsValidator"/>)
/// before anything starts, every problem reported at once.
/// </summary>
internal static class ControllerConfiguration
{
    /// <summary>The documented prefix: every option's variable is <c>HIVEBOX_</c> + its name in <see cref="Names"/>.</summary>
    public const string Prefix = "HIVEBOX_";

    /// <summary>Still read, below <see cref="Prefix"/>: the names most options had before there was one prefix.</summary>
    public const string LegacyPrefix = "HIVE_";

    /// <summary>Every option: its flag and its variable's name after the prefix.</summary>
    public static readonly IReadOnlyList<(string Flag, string Variable)> Names =
    [
        ("--api-key", "API_KEY"), ("--port", "PORT"), ("--host", "HOST"), ("--allowed-hosts", "ALLOWED_HOSTS"),
        ("--data-dir", "DATA_DIR"), ("--image-dir", "IMAGE_DIR"), ("--sbxd", "SBXD_PATH"), ("--sbxfuse", "SBXFUSE_PATH"), ("--sbxproxy", "SBXPROXY_PATH"),
        ("--net-pool", "NET_POOL"), ("--net-synthetic", "NET_SYNTHETIC"), ("--userns", "USERNS"), ("--userns-base", "USERNS_BASE"), ("--userns-ranges", "USERNS_RANGES"),
        ("--egress-resolve", "EGRESS_RESOLVE"), ("--egress-allow-cidr", "EGRESS_ALLOW_CIDR"), ("--egress-ca", "EGRESS_CA"), ("--agent-bundle", "AGENT_BUNDLE"),
        ("--reaper-interval", "REAPER_INTERVAL"), ("--fs-roots", "FS_ROOTS"),
        ("--events-max-bytes", "EVENTS_MAX_BYTES"), ("--events-max-age", "EVENTS_MAX_AGE"), ("--events-budget", "EVENTS_BUDGET"), ("--events-rate", "EVENTS_RATE"),
        ("--events-burst", "EVENTS_BURST"), ("--events-aggregate", "EVENTS_AGGREGATE"), ("--events-heartbeat", "EVENTS_HEARTBEAT"),
        ("--usage-interval", "USAGE_INTERVAL"), ("--analytics-interval", "ANALYTICS_INTERVAL"), ("--analytics-retention", "ANALYTICS_RETENTION"),
        ("--default-disk", "DEFAULT_DISK"), ("--default-workspace-quota", "DEFAULT_WORKSPACE_QUOTA"), ("--disk-inodes-per-gib", "DISK_INODES_PER_GIB"),
    ];

    /// <summary>The command-line provider's switch mappings: each flag to its configuration key (a <see cref="ControllerSettings"/> property).</summary>
    private static readonly Dictionary<string, string> Flags = Names.ToDictionary(n => n.Flag, n => Key(n.Variable), StringComparer.Ordinal);

    private static readonly Dictionary<string, string> Variables = Names.ToDictionary(n => n.Variable, n => Key(n.Variable), StringComparer.Ordinal);

    public const string Usage = """
        hive-controller — the Hive REST API, dashboard and sandbox supervisor.

        Every option is a flag or an environment variable HIVEBOX_<NAME> (a flag wins; the older
        HIVE_<NAME> is read too, below HIVEBOX_<NAME>). An empty variable counts as unset.

        Options (flag, NAME, default):
          --api-key KEY       API_KEY              none: no auth, listen on 127.0.0.1 only
          --port N            PORT                 7070
          --host ADDR         HOST                 127.0.0.1 without a key, 0.0.0.0 with one
          --allowed-hosts H[,H] ALLOWED_HOSTS      none: Host names answered besides loopback names; without a key
                              nothing else is (DNS rebinding), with one any name unless this is given; *.example.com for subdomains
          --data-dir DIR      DATA_DIR             /var/lib/hive
          --image-dir DIR     IMAGE_DIR            /var/cache/hive/images
          --sbxd PATH         SBXD_PATH            ../sbxd/hive-sbxd next to this program
          --sbxfuse PATH      SBXFUSE_PATH         ../sbxfuse/hive-sbxfuse next to this program
          --sbxproxy PATH     SBXPROXY_PATH        ../sbxproxy/hive-sbxproxy next to this program
          --net-pool CIDR     NET_POOL             10.213.0.0/16: where each networked sandbox's /30 comes from
          --net-synthetic CIDR NET_SYNTHETIC       10.214.0.0/16: synthetic per-name addresses the sandbox DNS answers with
          --userns on|off     USERNS               on: every sandbox in a user namespace of its own (root inside is nobody on the host)
          --userns-base ID    USERNS_BASE          1073741824: host id of the first sandbox id range (65536 ids per sandbox;
                              a multiple of 65536, clear of /etc/passwd, /etc/group, /etc/subuid, /etc/subgid)
          --userns-ranges N   USERNS_RANGES        4096: id ranges in the pool (sandboxes with a user namespace at once)
          --egress-resolve H=IP[,H=IP] EGRESS_RESOLVE none: fixed upstream addresses for names (private names)
          --egress-allow-cidr CIDR[,CIDR] EGRESS_ALLOW_CIDR none: private/link-local/... ranges upstreams may be in
                              (loopback, metadata and host addresses only when named exactly, e.g. 127.0.0.1/32)
          --egress-ca FILE    EGRESS_CA            none: extra CAs (PEM) trusted for upstream TLS
          --agent-bundle DIR  AGENT_BUNDLE         ../agent-bundle next to this program
          --reaper-interval S REAPER_INTERVAL      5 (seconds)
          --fs-roots DIR[:DIR] FS_ROOTS            none: where a workspace's "root" may point (shared workspaces)
          --events-max-bytes N EVENTS_MAX_BYTES    1073741824: event log size kept of a destroyed sandbox (0 = unlimited)
          --events-max-age S  EVENTS_MAX_AGE       2592000 (30 days): events of destroyed sandboxes older are removed (0 = forever)
          --events-budget N   EVENTS_BUDGET        1073741824: bytes of a live sandbox's log after which operations are refused (0 = unlimited)
          --events-rate N     EVENTS_RATE          20000: events/s per sandbox beyond which its operations wait (0 = unlimited)
          --events-burst N    EVENTS_BURST         200000: events at full speed on top of the rate
          --events-aggregate S EVENTS_AGGREGATE    1: identical denials within S seconds become one event (0 = off)
          --events-heartbeat S EVENTS_HEARTBEAT    15: seconds between keep-alive comments on idle SSE streams
          --usage-interval S  USAGE_INTERVAL       5: seconds between resource.usage events
          --analytics-interval S ANALYTICS_INTERVAL 10: seconds between /api/v1/analytics samples
          --analytics-retention S ANALYTICS_RETENTION 604800 (7 days): analytics history kept
          --default-disk SIZE DEFAULT_DISK         10g: a sandbox's disk (its writable layer and /tmp) when it asks for none
          --default-workspace-quota SIZE DEFAULT_WORKSPACE_QUOTA 10g: a new local workspace's quota when it asks for none
          --disk-inodes-per-gib N DISK_INODES_PER_GIB 65536: inodes per GiB of disk and of quota (1024-1048576)
          -h, --help
        """;

    /// <summary>
    /// Reads the options from <paramref name="args"/> and <paramref name="environment"/>
    /// (<see cref="Environment.GetEnvironmentVariables()"/> in production): the options, or every
    /// problem (each naming its flag), or that help was asked for.
    /// </summary>
    public static (ControllerOptions? Options, IReadOnlyList<string> Errors, bool Help) Load(IReadOnlyList<string> args, IDictionary environment, string baseDirectory)
    {
        var errors = new List<string>();
        var (flags, help) = CheckArguments(args, errors);
        if (help)
        {
            return (null, [], true);
        }

        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(FromEnvironment(environment, LegacyPrefix))
            .AddInMemoryCollection(FromEnvironment(environment, Prefix))
            .AddCommandLine([.. flags], Flags)
            .Build();
        var settings = configuration.Get<ControllerSettings>() ?? new ControllerSettings();

        var validator = new ControllerSettingsValidator(baseDirectory);
        if (validator.Validate(Options.DefaultName, settings) is { Failed: true } result)
        {
            errors.AddRange(result.Failures ?? [result.FailureMessage]);
        }

        return errors.Count == 0 ? (validator.Read(settings, []), errors, false) : (null, errors, false);
    }

    /// <summary><c>HIVEBOX_DATA_DIR</c> → key <c>DataDir</c>: a variable's name without prefix and underscores is its settings property.</summary>
    private static string Key(string variable) => variable.Replace("_", string.Empty, StringComparison.Ordinal);

    /// <summary>The variables of the options under <paramref name="prefix"/>; empty ones count as unset (a shell's <c>export X=</c>).</summary>
    private static IEnumerable<KeyValuePair<string, string?>> FromEnvironment(IDictionary environment, string prefix)
    {
        foreach (DictionaryEntry entry in environment)
        {
            if (entry.Key is string name && name.StartsWith(prefix, StringComparison.Ordinal) && entry.Value is string { Length: > 0 } value
                && Variables.TryGetValue(name[prefix.Length..], out var key))
            {
                yield return KeyValuePair.Create(key, (string?)value);
            }
        }
    }

    /// <summary>
    /// The command-line provider takes any <c>--name value</c> and skips what it cannot read; a
    /// mistyped flag or a stray word must fail start instead, so the arguments are checked here
    /// first and only well-formed flags reach the provider.
    /// </summary>
    private static (List<string> Flags, bool Help) CheckArguments(IReadOnlyList<string> args, List<string> errors)
    {
        var flags = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-h" or "--help")
            {
                return (flags, true);
            }

            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                errors.Add($"unexpected argument '{arg}'");
                continue;
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var flag = eq >= 0 ? arg[..eq] : arg;
            if (!Flags.ContainsKey(flag))
            {
                errors.Add($"unknown option '{flag}'");
                continue;
            }

            if (eq >= 0)
            {
                flags.Add(arg);
            }
            else if (i + 1 < args.Count)
            {
                flags.Add(flag);
                flags.Add(args[++i]);
            }
            else
            {
                errors.Add($"option '{flag}' needs a value");
            }
        }

        return (flags, false);
    }
}
