using System.Net;
using System.Net.Sockets;

namespace Hive.Policy.Net;

/// <summary>
/// Which addresses SbxProxy may connect to on a sandbox's behalf. Whatever name the sandbox used
/// (a public name that resolves inward, an operator mapping, a wildcard-DNS service that echoes
/// any address), the proxy connects only to public unicast addresses: never to Hive's own sandbox
/// network or synthetic addresses (other sandboxes — peers are reached only through
/// <c>expose</c>), private (RFC 1918), shared/CGNAT, loopback, link-local, unspecified, multicast,
/// reserved, documentation or benchmark ranges, IPv6 ULA or site-local, cloud metadata services,
/// or the host's own addresses — also not in IPv4-mapped, IPv4-compatible, NAT64 or 6to4 form.
/// The check runs before any connect, so nothing is sent to a refused address.
/// </summary>
/// <remarks>
/// The operator opens ranges with <c>--egress-allow-cidr</c>. Hive's pools stay closed whatever is
/// allowed. Addresses that are one service each — cloud metadata, the host's loopback and its
/// interface addresses — open only to an entry naming exactly that address (<c>/32</c>,
/// <c>/128</c>), so allowing <c>169.254.0.0/16</c> or <c>127.0.0.0/8</c> does not open them by accident.
/// </remarks>
public sealed class UpstreamAddressPolicy
{
    private static readonly (IPNetwork Network, string What)[] V4Ranges =
    [
        (IPNetwork.Parse("0.0.0.0/8"), "an unspecified ('this network') address"),
        (IPNetwork.Parse("10.0.0.0/8"), "a private address (RFC 1918)"),
        (IPNetwork.Parse("100.64.0.0/10"), "a shared/CGNAT address (RFC 6598)"),
        (IPNetwork.Parse("127.0.0.0/8"), "a loopback address"),
        (IPNetwork.Parse("169.254.0.0/16"), "a link-local address"),
        (IPNetwork.Parse("172.16.0.0/12"), "a private address (RFC 1918)"),
        (IPNetwork.Parse("192.0.0.0/24"), "an IETF protocol-assignment address"),
        (IPNetwork.Parse("192.0.2.0/24"), "a documentation address"),
        (IPNetwork.Parse("192.88.99.0/24"), "a 6to4 relay address"),
        (IPNetwork.Parse("192.168.0.0/16"), "a private address (RFC 1918)"),
        (IPNetwork.Parse("198.18.0.0/15"), "a benchmarking address (RFC 2544)"),
        (IPNetwork.Parse("198.51.100.0/24"), "a documentation address"),
        (IPNetwork.Parse("203.0.113.0/24"), "a documentation address"),
        (IPNetwork.Parse("224.0.0.0/4"), "a multicast address"),
        (IPNetwork.Parse("240.0.0.0/4"), "a reserved or broadcast address"),
    ];

    /// <summary>Inside 2000::/3 (global unicast), what is still not a public destination.</summary>
    private static readonly (IPNetwork Network, string What)[] V6Ranges =
    [
        (IPNetwork.Parse("2001::/32"), "a Teredo tunnel address"),
        (IPNetwork.Parse("2001:db8::/32"), "a documentation address"),
        (IPNetwork.Parse("2001::/23"), "an IETF protocol-assignment address"),
        (IPNetwork.Parse("3fff::/20"), "a documentation address"),
        (IPNetwork.Parse("5f00::/16"), "an SRv6 segment address"),
    ];

    private static readonly IPNetwork V6GlobalUnicast = IPNetwork.Parse("2000::/3");
    private static readonly IPNetwork V6Mapped = IPNetwork.Parse("::ffff:0:0/96");
    private static readonly IPNetwork V6Compatible = IPNetwork.Parse("::/96");
    private static readonly IPNetwork V6Nat64 = IPNetwork.Parse("64:ff9b::/96");
    private static readonly IPNetwork V6SixToFour = IPNetwork.Parse("2002::/16");

    /// <summary>Cloud instance-metadata and related per-host services (credentials live there).</summary>
    private static readonly HashSet<IPAddress> Metadata =
    [
        IPAddress.Parse("169.254.169.254"), // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
        IPAddress.Parse("169.254.170.2"), // AWS ECS task credentials
        IPAddress.Parse("169.254.169.253"), // AWS DNS
        IPAddress.Parse("169.254.169.123"), // AWS time
        IPAddress.Parse("100.100.100.200"), // Alibaba Cloud
        IPAddress.Parse("192.0.0.192"), // Oracle Cloud (classic)
        IPAddress.Parse("fd00:ec2::254"), // AWS IMDS over IPv6
        IPAddress.Parse("fd00:ec2::23"), // AWS DNS over IPv6
    ];

    private readonly IReadOnlyList<(IPNetwork Network, string What)> _pools;
    private readonly IReadOnlyList<IPNetwork> _allowed;
    private readonly Func<IPAddress, bool> _isHostAddress;

    /// <param name="pools">Hive's own ranges (sandbox network, synthetic addresses) with their names; never reachable.</param>
    /// <param name="allowed">The operator's <c>--egress-allow-cidr</c> entries.</param>
    /// <param name="isHostAddress">True for an address of one of the host's interfaces.</param>
    public UpstreamAddressPolicy(IReadOnlyList<(IPNetwork Network, string What)> pools, IReadOnlyList<IPNetwork> allowed, Func<IPAddress, bool> isHostAddress)
    {
        _pools = pools;
        _allowed = allowed;
        _isHostAddress = isHostAddress;
    }

    /// <summary>
    /// Parses a comma-separated CIDR list (the <c>--egress-allow-cidr</c> value); every bad entry is
    /// an error naming it. A bare address is taken as a single-address network.
    /// </summary>
    public static List<IPNetwork> ParseCidrs(string list, List<string> errors)
    {
        var result = new List<IPNetwork>();
        foreach (var entry in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var text = entry.Contains('/', StringComparison.Ordinal) ? entry : IPAddress.TryParse(entry, out var single) ? $"{entry}/{(single.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)}" : entry;
            if (IPNetwork.TryParse(text, out var network) && network.BaseAddress.Equals(IPAddress.Parse(text.Split('/')[0])))
            {
                result.Add(network);
                continue;
            }

            var parts = text.Split('/');
            errors.Add(parts.Length == 2 && IPAddress.TryParse(parts[0], out var baseAddress) && int.TryParse(parts[1], out var prefix)
                && prefix >= 0 && prefix <= (baseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)
                ? $"'{entry}' has bits set beyond its /{prefix} prefix (write the network address, e.g. the range's first address)"
                : $"'{entry}' is not a CIDR like 192.168.10.0/24 or 2001:db8::/48");
        }

        return result;
    }

    /// <summary>Null when the proxy may connect to <paramref name="address"/>; otherwise why not (for the agent and the event).</summary>
    public string? Refusal(IPAddress address)
    {
        var embedded = Embedded(address);
        var subject = embedded ?? address;
        var named = embedded is null ? address.ToString() : $"{embedded} (embedded in {address})";

        foreach (var (network, what) in _pools)
        {
            if (In(network, subject))
            {
                return $"{named} is in {what} ({network}): other sandboxes are reached only as <name>.hive on ports they expose";
            }
        }

        if (Metadata.Contains(address) || Metadata.Contains(subject))
        {
            return Exactly(address, subject) ? null : $"{named} is a cloud metadata service address";
        }

        if (IPAddress.IsLoopback(subject) || _isHostAddress(subject))
        {
            return Exactly(address, subject) ? null : $"{named} is an address of the host itself";
        }

        var category = Category(subject);
        if (category is null)
        {
            return null;
        }

        return _allowed.Any(n => In(n, address) || In(n, subject)) ? null : $"{named} is {category}";
    }

    /// <summary>Allowed by an entry that names exactly this address.</summary>
    private bool Exactly(IPAddress address, IPAddress subject) =>
        _allowed.Any(n => n.PrefixLength == (n.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128) && (n.BaseAddress.Equals(address) || n.BaseAddress.Equals(subject)));

    /// <summary>The IPv4 address inside an IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address.</summary>
    private static IPAddress? Embedded(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return null;
        }

        var bytes = address.GetAddressBytes();
        if (In(V6Mapped, address) || In(V6Nat64, address) || (In(V6Compatible, address) && !address.Equals(IPAddress.IPv6Any) && !address.Equals(IPAddress.IPv6Loopback)))
        {
            return new IPAddress(bytes.AsSpan(12, 4));
        }

        return In(V6SixToFour, address) ? new IPAddress(bytes.AsSpan(2, 4)) : null;
    }

    /// <summary>
    /// Prefix match on the bytes, same family only. By hand because <see cref="IPNetwork.Contains"/>
    /// treats IPv4-mapped IPv6 addresses specially (::ffff:0:0/96 does not contain them, 2000::/3 does).
    /// </summary>
    internal static bool In(IPNetwork network, IPAddress address)
    {
        if (network.BaseAddress.AddressFamily != address.AddressFamily)
        {
            return false;
        }

        Span<byte> a = stackalloc byte[16];
        Span<byte> n = stackalloc byte[16];
        address.TryWriteBytes(a, out var length);
        network.BaseAddress.TryWriteBytes(n, out _);
        var bits = network.PrefixLength;
        for (var i = 0; i < length && bits > 0; i++, bits -= 8)
        {
            var mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
            if ((a[i] & mask) != (n[i] & mask))
            {
                return false;
            }
        }

        return true;
    }

    private static string? Category(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            foreach (var (network, what) in V4Ranges)
            {
                if (In(network, address))
                {
                    return what;
                }
            }

            return null;
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return "not an IP address";
        }

        if (address.Equals(IPAddress.IPv6Any))
        {
            return "an unspecified address";
        }

        if (!In(V6GlobalUnicast, address))
        {
            return address.IsIPv6Multicast ? "a multicast address"
                : address.IsIPv6LinkLocal ? "a link-local address"
                : address.IsIPv6SiteLocal ? "a site-local address"
                : (address.GetAddressBytes()[0] & 0xfe) == 0xfc ? "a unique local address (ULA, fc00::/7)"
                : "a reserved IPv6 address (not global unicast)";
        }

        foreach (var (network, what) in V6Ranges)
        {
            if (In(network, address))
            {
                return what;
            }
        }

        return null;
    }
}
