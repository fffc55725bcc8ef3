using System.Net;
using System.Text.Json;

namespace Hive.SbxProxy;

/// <summary>A member of this sandbox's network group: its address and the ports it exposes to the group.</summary>
internal sealed record Peer(string Name, IPAddress Address, IReadOnlyList<int> Expose);

/// <summary>
/// Network <c>shared</c>: the other sandboxes of the same group, by name as <c>&lt;name&gt;.hive</c>.
/// Membership and exposed ports come from the network leases (one file per sandbox, written by its
/// Sbxd on the host); a peer is reached through this proxy (audited) at its own address, and only
/// on a port it lists in <c>expose</c>.
/// </summary>
internal sealed class Peers(ProxyConfig config)
{
    public const string Suffix = ".hive";

    private readonly IPNetwork? _pool = IPNetwork.TryParse(config.NetPool, out var pool) ? pool : null;

    /// <summary>Names under .hive belong to sandboxes: only group members resolve, never the outside world.</summary>
    public static bool IsReserved(string name) => name.EndsWith(Suffix, StringComparison.Ordinal) || name == "hive";

    /// <summary>The peer when <paramref name="name"/> is <c>&lt;peer&gt;.hive</c> in our group, else null.</summary>
    public Peer? Resolve(string name)
    {
        if (config.Group.Length == 0 || config.LeasesDir.Length == 0 || !name.EndsWith(Suffix, StringComparison.Ordinal))
        {
            return null;
        }

        var peer = name[..^Suffix.Length];
        if (peer == config.Sandbox || peer.Length == 0)
        {
            return null;
        }

        IEnumerable<string> files;
        try
        {
            files = Directory.EnumerateFiles(config.LeasesDir).Where(f => int.TryParse(Path.GetFileName(f), out _)).ToList();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        foreach (var file in files)
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(file));
                var root = doc.RootElement;
                if (root.TryGetProperty("name", out var n) && n.GetString() == peer &&
                    root.TryGetProperty("group", out var g) && g.GetString() == config.Group &&
                    root.TryGetProperty("ip", out var ip) && IPAddress.TryParse(ip.GetString(), out var address) &&
                    _pool is { } network && network.Contains(address))
                {
                    var expose = new List<int>();
                    if (root.TryGetProperty("expose", out var ports) && ports.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var port in ports.EnumerateArray())
                        {
                            if (port.TryGetInt32(out var p) && p is >= 1 and <= 65535)
                            {
                                expose.Add(p);
                            }
                        }
                    }

                    return new Peer(peer, address, expose);
                }
            }
            catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException or InvalidOperationException)
            {
                // A lease being rewritten or removed: not a peer right now.
            }
        }

        return null;
    }
}
