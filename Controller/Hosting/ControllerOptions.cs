namespace Hive.Controller.Hosting;

/// <summary>Controller settings, checked and converted from configuration (<see cref="ControllerConfiguration"/>: a flag and an environment variable each).</summary>
internal sealed record ControllerOptions
{
    /// <summary>Bearer key every endpoint but /healthz needs. Null = none, and then the Controller only listens on loopback.</summary>
    public string? ApiKey { get; init; }

    /// <summary>
    /// Host names (<c>Host</c> header, no port; <c>*.example.com</c> for subdomains) the API answers to besides
    /// loopback names. Default: none — without a key only loopback names are answered (DNS rebinding), with one any.
    /// </summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>TCP port of the REST API. Default 7070.</summary>
    public int Port { get; init; } = 7070;

    /// <summary>Listen address. Default 127.0.0.1 without an API key, 0.0.0.0 with one.</summary>
    public string? Host { get; init; }

    /// <summary>State root: SQLite database and one directory per sandbox. Default /var/lib/hive.</summary>
    public string DataDir { get; init; } = "/var/lib/hive";

    /// <summary>Where images live: &lt;dir&gt;/&lt;name&gt;/{rootfs,image.json}. Default /var/cache/hive/images.</summary>
    public string ImageDir { get; init; } = "/var/cache/hive/images";

    /// <summary>The hive-sbxd executable. Default: ../sbxd/hive-sbxd next to the Controller.</summary>
    public string SbxdPath { get; init; } = string.Empty;

    /// <summary>The hive-sbxfuse executable (one per workspace mount). Default: ../sbxfuse/hive-sbxfuse next to the Controller.</summary>
    public string SbxFusePath { get; init; } = string.Empty;

    /// <summary>The hive-sbxproxy executable (one per networked sandbox). Default: ../sbxproxy/hive-sbxproxy next to the Controller.</summary>
    public string SbxProxyPath { get; init; } = string.Empty;

    /// <summary>The pool sandbox /30 networks come from. Default 10.213.0.0/16.</summary>
    public string NetPool { get; init; } = "10.213.0.0/16";

    /// <summary>The range of synthetic per-name addresses the sandbox's DNS answers with. Default 10.214.0.0/16.</summary>
    public string SyntheticPool { get; init; } = "10.214.0.0/16";

    /// <summary>
    /// Run every sandbox in a user namespace of its own (root inside is an unprivileged id range on the
    /// host). Default on; off only to compare costs or on a host whose kernel cannot idmap the image
    /// directory's file system.
    /// </summary>
    public bool UserNamespaces { get; init; } = true;

    /// <summary>
    /// Host id of the first of the sandboxes' id ranges (65,536 ids each, one per sandbox). Default
    /// 1,073,741,824 (2^30): far above the host's own users and the /etc/subuid ranges tools hand out
    /// from 100,000; checked against /etc/passwd, /etc/group, /etc/subuid and /etc/subgid at start.
    /// A multiple of 65,536, at least 65,536.
    /// </summary>
    public uint UsernsBase { get; init; } = DefaultUsernsBase;

    /// <summary>How many ranges (sandboxes with a user namespace at once). Default 4,096; 1–65,535, and the pool must end below 2^32 − 1.</summary>
    public int UsernsRanges { get; init; } = 4096;

    public const uint DefaultUsernsBase = 1u << 30;

    /// <summary>Name -> address overrides for SbxProxy's upstream connections (private names; tests).</summary>
    public IReadOnlyDictionary<string, string> EgressResolve { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Ranges SbxProxy may connect to although they are private, shared, link-local, ULA, … (canonical
    /// CIDRs). Loopback, cloud metadata and the host's own addresses open only to an entry naming
    /// exactly that address; Hive's own pools never. Default: none (public addresses only).
    /// </summary>
    public IReadOnlyList<string> EgressAllowCidrs { get; init; } = [];

    /// <summary>PEM file of extra CAs trusted for upstream TLS besides the host's store. Default: none.</summary>
    public string? EgressCaFile { get; init; }

    /// <summary>The agent bundle directory bind-mounted at /.hive. Default: ../agent-bundle next to the Controller.</summary>
    public string AgentBundle { get; init; } = string.Empty;

    /// <summary>How often expired sandboxes are looked for. Default 5 s.</summary>
    public TimeSpan ReaperInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often every sandbox's Sbxd is health-checked. Default 5 s.</summary>
    public TimeSpan MonitorInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long create may take before it fails. Default 60 s.</summary>
    public TimeSpan CreateTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Directories under which a workspace may name its own <c>root</c> (shared workspaces). Default: none.</summary>
    public IReadOnlyList<string> FsRoots { get; init; } = [];

    /// <summary>
    /// Retention: a destroyed sandbox's event log (and earlier lives of a name created again) is cut
    /// to this size, oldest segments first. A live sandbox's own history is never removed (see
    /// <see cref="EventsBudgetBytes"/>). Default 1 GiB; 0 = unlimited.
    /// </summary>
    public long EventsMaxBytes { get; init; } = 1024L * 1024 * 1024;

    /// <summary>Retention: events of destroyed sandboxes (and earlier lives) older than this are removed. Default 30 days; zero = forever.</summary>
    public TimeSpan EventsMaxAge { get; init; } = TimeSpan.FromDays(30);

    /// <summary>
    /// Event budget of a new sandbox: once its life's history in the log reaches this many bytes,
    /// operations that need an event are refused until the budget is raised (per sandbox through
    /// the API). Default 1 GiB; 0 = unlimited.
    /// </summary>
    public long EventsBudgetBytes { get; init; } = Hive.Events.Spool.EventBudget.DefaultBudgetBytes;

    /// <summary>Rate budget of a new sandbox: events per second beyond which its file and network operations wait. Default 20,000; 0 = unlimited.</summary>
    public double EventsRate { get; init; } = Hive.Events.Spool.EventBudget.DefaultRate;

    /// <summary>Events a sandbox may produce at full speed on top of <see cref="EventsRate"/>. Default 200,000.</summary>
    public long EventsBurst { get; init; } = Hive.Events.Spool.EventBudget.DefaultBurst;

    /// <summary>Identical denials within this window become one event with a count. Default 1 s; zero = each its own event.</summary>
    public TimeSpan EventsAggregate { get; init; } = Hive.Events.Spool.EventBudget.DefaultAggregateWindow;

    /// <summary>An idle SSE stream gets a comment line this often (keeps proxies from closing it). Default 15 s.</summary>
    public TimeSpan EventsHeartbeat { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Interval of resource.usage events. Default 5 s.</summary>
    public TimeSpan UsageInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Interval of the analytics sampler. Default 10 s.</summary>
    public TimeSpan AnalyticsInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long analytics samples are kept. Default 7 days.</summary>
    public TimeSpan AnalyticsRetention { get; init; } = TimeSpan.FromDays(7);

    /// <summary>
    /// <c>disk</c> of a sandbox that asks for none: the size of its writable layer's own file system
    /// (every file it changes or adds, <c>/tmp</c> included). Default 10 GiB.
    /// </summary>
    public long DefaultDiskBytes { get; init; } = 10L << 30;

    /// <summary>
    /// <c>quota</c> of a new local workspace that asks for none (an existing one keeps its size).
    /// Default 10 GiB.
    /// </summary>
    public long DefaultWorkspaceQuotaBytes { get; init; } = 10L << 30;

    /// <summary>Inodes per GiB of a sandbox's <c>disk</c> and of a workspace's <c>quota</c> (the most files they may hold). Default 65,536 (one per 16 KiB); 1,024 … 1,048,576.</summary>
    public long DiskInodesPerGiB { get; init; } = 65536;

    /// <summary>Host-side secret store for egress inject values (never visible to sandboxes).</summary>
    public string SecretsDir => Path.Combine(DataDir, "secrets");

    /// <summary>Id range leases (one file per sandbox with a user namespace).</summary>
    public string IdLeasesDir => Path.Combine(DataDir, "ids", "leases");

    /// <summary>Network leases (one file per sandbox with an address).</summary>
    public string NetLeasesDir => Path.Combine(DataDir, "net", "leases");

    public string EffectiveHost => Host ?? (ApiKey is null ? "127.0.0.1" : "0.0.0.0");

    public string SandboxesDir => Path.Combine(DataDir, "sandboxes");

    /// <summary>Local workspace backends: &lt;data&gt;/workspaces/&lt;sandbox&gt;/&lt;mount id&gt;, kept when a sandbox is destroyed.</summary>
    public string WorkspacesDir => Path.Combine(DataDir, "workspaces");

    /// <summary>Durable per-sandbox event logs: &lt;data&gt;/events/&lt;sandbox&gt;, kept after destroy until retention removes them.</summary>
    public string EventsDir => Path.Combine(DataDir, "events");

    public string DatabasePath => Path.Combine(DataDir, "hive.db");
}
