using Hive.Policy.Net;
using Hive.SbxProxy.Audit;
using Hive.SbxProxy.Dns;
using Hive.SbxProxy.Tls;

namespace Hive.SbxProxy;

/// <summary>Counters of <c>GetStats</c>.</summary>
internal sealed class ProxyCounters
{
    public long Connections;
    public long Requests;
    public long Denied;
    public long DnsQueries;
    public long UpstreamErrors;
    public long BytesOut;
    public long BytesIn;
}

/// <summary>What every part of the proxy shares: config, the live policy (hot-swapped), names, audit, CA, upstream access.</summary>
internal sealed class ProxyState
{
    private volatile EgressPolicy _policy;

    public ProxyState(ProxyConfig config, EgressPolicy policy, NetAudit audit, Secrets secrets, CertificateAuthority ca, Upstream upstream)
    {
        Config = config;
        _policy = policy;
        Audit = audit;
        Secrets = secrets;
        Ca = ca;
        Upstream = upstream;
        Names = new SyntheticNames(config.SyntheticPool, config.NamesFile);
        Peers = new Peers(config);
    }

    public ProxyConfig Config { get; }

    /// <summary>The rules in force; replaced whole by SetPolicy (each request reads it once).</summary>
    public EgressPolicy Policy
    {
        get => _policy;
        set => _policy = value;
    }

    public NetAudit Audit { get; }

    public Secrets Secrets { get; }

    public CertificateAuthority Ca { get; }

    public Upstream Upstream { get; }

    public SyntheticNames Names { get; }

    public Peers Peers { get; }

    public ProxyCounters Counters { get; } = new();

    public long StartedAtUnixMs { get; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public static EgressPolicy ParsePolicy(string json) => string.IsNullOrWhiteSpace(json) ? EgressPolicy.AllowEverything : EgressPolicy.Parse(json);
}
