using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hive.SbxProxy;

/// <summary>
/// Everything one hive-sbxproxy needs, written by Sbxd to <c>&lt;state&gt;/net/proxy.json</c> (host-only).
/// </summary>
internal sealed record ProxyConfig
{
    /// <summary>The sandbox's name (events, peer names).</summary>
    public required string Sandbox { get; init; }

    /// <summary>The host end of the sandbox's veth (where the redirected traffic arrives).</summary>
    public required string ListenAddress { get; init; }

    public int TcpPort { get; init; } = 15001;

    public int DnsPort { get; init; } = 15053;

    /// <summary>The egress policy JSON; empty = every host allowed.</summary>
    public string Egress { get; init; } = string.Empty;

    /// <summary>Holds ca.key and ca.crt (host-only).</summary>
    public required string CaDir { get; init; }

    public required string SpoolDir { get; init; }

    public string SecretsDir { get; init; } = string.Empty;

    /// <summary>Name -> address overrides for upstream connections.</summary>
    public Dictionary<string, string> Resolve { get; init; } = [];

    /// <summary>PEM file of extra CAs trusted for upstream TLS, besides the host's store.</summary>
    public string UpstreamCaFile { get; init; } = string.Empty;

    /// <summary>CIDR the synthetic per-name addresses come from.</summary>
    public string SyntheticPool { get; init; } = "10.214.0.0/16";

    /// <summary>Where the names handed out so far are kept (a restarted proxy keeps its answers).</summary>
    public required string NamesFile { get; init; }

    /// <summary>The pool sandbox /30 networks come from: never an upstream (peers only through expose).</summary>
    public string NetPool { get; init; } = "10.213.0.0/16";

    /// <summary>The operator's <c>--egress-allow-cidr</c>: ranges upstream connections may reach although they are private, link-local, ….</summary>
    public List<string> AllowCidrs { get; init; } = [];

    /// <summary>Network shared: the group, and the leases directory to find its members in.</summary>
    public string Group { get; init; } = string.Empty;

    public string LeasesDir { get; init; } = string.Empty;

    public static ProxyConfig Load(string path) =>
        JsonSerializer.Deserialize(File.ReadAllText(path), ProxyConfigJson.Default.ProxyConfig) ?? throw new InvalidDataException($"{path}: empty config");

    public IPAddress Listen => IPAddress.Parse(ListenAddress);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ProxyConfig))]
internal sealed partial class ProxyConfigJson : JsonSerializerContext;
