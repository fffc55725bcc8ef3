using System.Buffers.Binary;
using System.Text;

namespace Hive.SbxProxy.Dns;

/// <summary>
/// The one DNS question of a query and the answer the proxy builds for it. Hand-written because the
/// proxy is an authoritative-only responder for one question per query (no recursion, no
/// compression beyond a pointer to the question) and no DNS server library is available here.
/// </summary>
/// <param name="Name">Lower-cased (what is decided on).</param>
/// <param name="AsAsked">As the query spelled it (what is recorded: case can carry tunnelled data).</param>
internal readonly record struct DnsQuestion(ushort Id, ushort Flags, string Name, ushort Type, ushort Class, int QuestionEnd, string AsAsked)
{
    public const ushort TypeA = 1;
    public const ushort TypeAaaa = 28;
    public const byte NoError = 0;
    public const byte FormErr = 1;
    public const byte ServFail = 2;
    public const byte NxDomain = 3;
    public const byte NotImp = 4;
    public const byte Refused = 5;

    public static string TypeName(ushort type) => type switch
    {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        65 => "HTTPS",
        255 => "ANY",
        _ => "TYPE" + type.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Parses a query; null when it is not one query with exactly one well-formed question.</summary>
    public static DnsQuestion? Parse(ReadOnlySpan<byte> message)
    {
        if (message.Length < 12)
        {
            return null;
        }

        var id = BinaryPrimitives.ReadUInt16BigEndian(message);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        var qdcount = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        if ((flags & 0x8000) != 0 || qdcount != 1)
        {
            return null;
        }

        var name = new StringBuilder();
        var at = 12;
        while (true)
        {
            if (at >= message.Length)
            {
                return null;
            }

            int length = message[at++];
            if (length == 0)
            {
                break;
            }

            if (length > 63 || at + length > message.Length || name.Length + length > 254)
            {
                return null; // also rejects compression pointers in a question
            }

            if (name.Length > 0)
            {
                name.Append('.');
            }

            foreach (var b in message.Slice(at, length))
            {
                // Anything outside printable ASCII is kept visible but harmless in events.
                name.Append(b is > 0x20 and < 0x7f and not (byte)'.' ? (char)b : '?');
            }

            at += length;
        }

        if (at + 4 > message.Length)
        {
            return null;
        }

        var type = BinaryPrimitives.ReadUInt16BigEndian(message[at..]);
        var cls = BinaryPrimitives.ReadUInt16BigEndian(message[(at + 2)..]);
        var asAsked = name.ToString();
        return new DnsQuestion(id, flags, asAsked.ToLowerInvariant(), type, cls, at + 4, asAsked);
    }

    /// <summary>A response echoing the question, with <paramref name="rcode"/> and an optional A record (TTL 30 s).</summary>
    public byte[] Answer(ReadOnlySpan<byte> query, byte rcode, byte[]? addressV4)
    {
        var answerLength = addressV4 is null ? 0 : 16;
        var response = new byte[QuestionEnd + answerLength];
        query[..QuestionEnd].CopyTo(response);
        // QR=1, opcode from the query, AA=1, RD copied, RA=1.
        var flags = (ushort)(0x8000 | (Flags & 0x7800) | 0x0400 | (Flags & 0x0100) | 0x0080 | rcode);
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(6), (ushort)(addressV4 is null ? 0 : 1));
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(8), 0);
        BinaryPrimitives.WriteUInt16BigEndian(response.AsSpan(10), 0);
        if (addressV4 is not null)
        {
            var a = response.AsSpan(QuestionEnd);
            BinaryPrimitives.WriteUInt16BigEndian(a, 0xC00C); // pointer to the question's name
            BinaryPrimitives.WriteUInt16BigEndian(a[2..], TypeA);
            BinaryPrimitives.WriteUInt16BigEndian(a[4..], 1);
            BinaryPrimitives.WriteUInt32BigEndian(a[6..], 30);
            BinaryPrimitives.WriteUInt16BigEndian(a[10..], 4);
            addressV4.CopyTo(a[12..]);
        }

        return response;
    }

    /// <summary>FORMERR for something that is not a parsable query (only the header is echoed).</summary>
    public static byte[]? FormatError(ReadOnlySpan<byte> query)
    {
        if (query.Length < 12 || (query[2] & 0x80) != 0)
        {
            return null;
        }

        var response = new byte[12];
        query[..2].CopyTo(response);
        response[2] = (byte)(0x80 | (query[2] & 0x79));
        response[3] = 0x80 | FormErr;
        return response;
    }
}
