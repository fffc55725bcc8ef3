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

    /// <summary>Which upstream addresses may be connected to (checked before every connect).</summary>
    public UpstreamAddressPolicy Addresses => Upstream.Addresses;

    public ProxyCounters Counters { get; } = new();

    public long StartedAtUnixMs { get; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>The address policy of <paramref name="config"/>; throws <see cref="InvalidDataException"/> for a bad pool or CIDR.</summary>
    public static UpstreamAddressPolicy AddressPolicy(ProxyConfig config, HostAddresses host)
    {
        var errors = new List<string>();
        var allowed = UpstreamAddressPolicy.ParseCidrs(string.Join(',', config.AllowCidrs), errors);
        var pools = new List<(System.Net.IPNetwork, string)>();
        foreach (var (cidr, what) in new[] { (config.NetPool, "Hive's sandbox network"), (config.SyntheticPool, "Hive's synthetic address pool") })
        {
            if (System.Net.IPNetwork.TryParse(cidr, out var network))
            {
                pools.Add((network, what));
            }
            else
            {
                errors.Add($"{what} '{cidr}' is not a CIDR");
            }
        }

        return errors.Count == 0 ? new UpstreamAddressPolicy(pools, allowed, host.Contains) : throw new InvalidDataException(string.Join("; ", errors));
    }

    public static EgressPolicy ParsePolicy(string json) => string.IsNullOrWhiteSpace(json) ? EgressPolicy.AllowEverything : EgressPolicy.Parse(json);
}
