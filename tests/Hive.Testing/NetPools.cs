using System.Buffers.Binary;
using System.Net;

namespace Hive.Testing;

/// <summary>
/// The network pools the Controllers under test use (HIVE_NET_POOL / HIVE_NET_SYNTHETIC, inherited
/// from the test run, else the Controller's defaults), and the addresses a fresh data dir hands out.
/// </summary>
public static class NetPools
{
    public static string Pool => Environment.GetEnvironmentVariable("HIVE_NET_POOL") is { Length: > 0 } p ? p : "10.213.0.0/16";

    public static string Synthetic => Environment.GetEnvironmentVariable("HIVE_NET_SYNTHETIC") is { Length: > 0 } s ? s : "10.214.0.0/16";

    /// <summary>The address of the sandbox holding lease <paramref name="index"/> (each sandbox gets the /30 at index × 4; it is its second address).</summary>
    public static IPAddress SandboxAddress(int index) => Offset(Pool, (index * 4) + 2);

    /// <summary>An address of the synthetic pool (offset from its start).</summary>
    public static IPAddress SyntheticAddress(int offset) => Offset(Synthetic, offset);

    public static bool InPool(string address) => IPNetwork.Parse(Pool).Contains(IPAddress.Parse(address));

    private static IPAddress Offset(string cidr, int offset)
    {
        var network = IPNetwork.Parse(cidr);
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, BinaryPrimitives.ReadUInt32BigEndian(network.BaseAddress.GetAddressBytes()) + (uint)offset);
        return new IPAddress(bytes);
    }
}
