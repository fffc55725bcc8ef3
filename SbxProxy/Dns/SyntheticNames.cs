using System.Buffers.Binary;
using System.Net;

namespace Hive.SbxProxy.Dns;

/// <summary>
/// One synthetic address per name the sandbox resolved: the DNS answer is an address from a pool
/// that only this proxy understands, so a connection's destination address *is* the name it was
/// resolved for. Rules by host then hold for raw TCP too, and a forged SNI or Host header cannot
/// reach any other address: the proxy connects to the name's real address itself. Direct
/// connections to any other address reach no one.
/// </summary>
internal sealed class SyntheticNames
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, IPAddress> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, string> _byAddress = [];
    private readonly uint _base;
    private readonly uint _size;
    private readonly string _file;
    private uint _next = 1;

    public SyntheticNames(string cidr, string file)
    {
        var parts = cidr.Split('/');
        if (parts.Length != 2 || !IPAddress.TryParse(parts[0], out var network) || network.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork ||
            !int.TryParse(parts[1], out var prefix) || prefix is < 8 or > 28)
        {
            throw new ArgumentException($"synthetic pool '{cidr}' must be an IPv4 CIDR between /8 and /28");
        }

        _size = 1u << (32 - prefix);
        _base = BinaryPrimitives.ReadUInt32BigEndian(network.GetAddressBytes()) & ~(_size - 1);
        _file = file;
        if (File.Exists(file))
        {
            foreach (var line in File.ReadLines(file))
            {
                var fields = line.Split(' ');
                if (fields.Length == 2 && uint.TryParse(fields[1], out var offset) && offset > 0 && offset < _size - 1)
                {
                    Add(fields[0], offset);
                }
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byName.Count;
            }
        }
    }

    /// <summary>The name's address, allocated (and persisted) on first use; null when the pool is exhausted.</summary>
    public IPAddress? AddressFor(string name)
    {
        lock (_gate)
        {
            if (_byName.TryGetValue(name, out var known))
            {
                return known;
            }

            while (_next < _size - 1 && _byAddress.ContainsKey(_next))
            {
                _next++;
            }

            if (_next >= _size - 1)
            {
                return null;
            }

            var offset = _next++;
            File.AppendAllText(_file, $"{name} {offset}\n");
            return Add(name, offset);
        }
    }

    /// <summary>The name a synthetic address stands for, or null (a direct connection).</summary>
    public string? NameFor(IPAddress address)
    {
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            return null;
        }

        var value = BinaryPrimitives.ReadUInt32BigEndian(address.GetAddressBytes());
        if (value - _base >= _size)
        {
            return null;
        }

        lock (_gate)
        {
            return _byAddress.GetValueOrDefault(value - _base);
        }
    }

    private IPAddress Add(string name, uint offset)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, _base + offset);
        var address = new IPAddress(bytes);
        _byName[name] = address;
        _byAddress[offset] = name;
        return address;
    }
}
