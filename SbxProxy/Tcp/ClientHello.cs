using System.Buffers.Binary;
using System.Text;

namespace Hive.SbxProxy.Tcp;

/// <summary>Reads the server_name extension of a TLS ClientHello record (before the handshake is answered).</summary>
internal static class ClientHello
{
    /// <summary>The SNI host name, or null when there is none or the record is not a parsable ClientHello.</summary>
    public static string? ServerName(ReadOnlySpan<byte> record)
    {
        try
        {
            if (record.Length < 9 || record[0] != 0x16 || record[5] != 0x01)
            {
                return null;
            }

            var at = 9; // record header (5) + handshake type (1) + length (3)
            at += 2 + 32; // client version, random
            at += 1 + record[at]; // session id
            at += 2 + BinaryPrimitives.ReadUInt16BigEndian(record[at..]); // cipher suites
            at += 1 + record[at]; // compression methods
            var extensionsEnd = at + 2 + BinaryPrimitives.ReadUInt16BigEndian(record[at..]);
            at += 2;
            while (at + 4 <= Math.Min(extensionsEnd, record.Length))
            {
                var type = BinaryPrimitives.ReadUInt16BigEndian(record[at..]);
                var length = BinaryPrimitives.ReadUInt16BigEndian(record[(at + 2)..]);
                at += 4;
                if (type == 0)
                {
                    // server_name_list: length (2), then entries of type (1) + length (2) + name.
                    var entry = at + 2;
                    if (record[entry] == 0)
                    {
                        var nameLength = BinaryPrimitives.ReadUInt16BigEndian(record[(entry + 1)..]);
                        return Encoding.ASCII.GetString(record.Slice(entry + 3, nameLength));
                    }

                    return null;
                }

                at += length;
            }
        }
        catch (Exception ex) when (ex is ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
        }

        return null;
    }
}
