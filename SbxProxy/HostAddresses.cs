using System.Net;
using System.Net.NetworkInformation;

namespace Hive.SbxProxy;

/// <summary>
/// The host's own interface addresses (a public name resolving to one of them would reach the
/// host's services), listed at most once per few seconds: asking netlink on every upstream
/// connection would cost more than the connection.
/// </summary>
internal sealed class HostAddresses(TimeProvider time)
{
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(5);
    private readonly Lock _gate = new();
    private HashSet<IPAddress>? _addresses;
    private long _listedAt = long.MinValue;

    public bool Contains(IPAddress address)
    {
        HashSet<IPAddress>? current;
        lock (_gate)
        {
            var now = time.GetTimestamp();
            if (_listedAt == long.MinValue || time.GetElapsedTime(_listedAt, now) > Refresh)
            {
                _addresses = List();
                _listedAt = now;
            }

            current = _addresses;
        }

        return current is null || current.Contains(address);
    }

    private static HashSet<IPAddress>? List()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Select(u => u.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && u.Address.ScopeId != 0 ? new IPAddress(u.Address.GetAddressBytes()) : u.Address)
                .ToHashSet();
        }
        catch (NetworkInformationException)
        {
            // Cannot tell: every address counts as the host's own (refused) until a listing works.
            return null;
        }
    }
}
