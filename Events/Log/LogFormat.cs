using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;

namespace Hive.Events.Log;

/// <summary>
/// On-disk format of a sandbox's event log: segment files <c>&lt;first seq, 20 digits&gt;.seg</c>, each a
/// run of records <c>u32 payload length | u32 CRC-32 of (seq, payload) | u64 seq | payload</c> (little
/// endian). Payload = an <c>hive.v1.Event</c> without its seq; seq 0 marks a checkpoint record
/// (<c>hive.v1.SpoolCheckpoint</c>), which readers skip.
/// </summary>
public static class LogFormat
{
    public const int HeaderBytes = 16;
    public const string Extension = ".seg";
    public const int MaxPayloadBytes = 1024 * 1024;

    public static string SegmentName(ulong firstSeq) => firstSeq.ToString("D20", CultureInfo.InvariantCulture) + Extension;

    /// <summary>Segments in <paramref name="dir"/> by first sequence number, ascending.</summary>
    public static List<(ulong FirstSeq, string Path)> Segments(string dir)
    {
        var result = new List<(ulong, string)>();
        if (!Directory.Exists(dir))
        {
            return result;
        }

        foreach (var path in Directory.EnumerateFiles(dir, "*" + Extension))
        {
            var stem = Path.GetFileNameWithoutExtension(path);
            if (stem.Length == 20 && ulong.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out var first))
            {
                result.Add((first, path));
            }
        }

        result.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return result;
    }

    public static void WriteHeader(Span<byte> header, ulong seq, ReadOnlySpan<byte> payload)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(header[8..], seq);
        var crc = new Crc32();
        crc.Append(header[8..16]);
        crc.Append(payload);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], crc.GetCurrentHashAsUInt32());
    }

    /// <summary>
    /// The <c>ts_unix_us</c> of an encoded event (field 2), read without decoding the whole
    /// message; 0 if absent. Batches are ordered by it, so causality holds across producers.
    /// </summary>
    public static long TimestampOf(ReadOnlySpan<byte> payload)
    {
        var at = 0;
        while (at < payload.Length)
        {
            var tag = ReadVarint(payload, ref at);
            switch (tag & 7)
            {
                case 0:
                    var value = ReadVarint(payload, ref at);
                    if (tag >> 3 == 2)
                    {
                        return (long)value;
                    }

                    break;
                case 1:
                    at += 8;
                    break;
                case 2:
                    at += (int)ReadVarint(payload, ref at);
                    break;
                case 5:
                    at += 4;
                    break;
                default:
                    return 0;
            }
        }

        return 0;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> data, ref int at)
    {
        ulong result = 0;
        for (var shift = 0; at < data.Length && shift < 64; shift += 7)
        {
            var b = data[at++];
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                break;
            }
        }

        return result;
    }

    /// <summary>Parses the record at the start of <paramref name="data"/>; false when incomplete or corrupt.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out ulong seq, out int payloadOffset, out int payloadLength, out bool corrupt)
    {
        seq = 0;
        payloadOffset = HeaderBytes;
        payloadLength = 0;
        corrupt = false;
        if (data.Length < HeaderBytes)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(data);
        if (length > MaxPayloadBytes)
        {
            corrupt = true;
            return false;
        }

        if (data.Length < HeaderBytes + (int)length)
        {
            return false;
        }

        var crc = new Crc32();
        crc.Append(data[8..16]);
        crc.Append(data.Slice(HeaderBytes, (int)length));
        if (crc.GetCurrentHashAsUInt32() != BinaryPrimitives.ReadUInt32LittleEndian(data[4..]))
        {
            corrupt = true;
            return false;
        }

        seq = BinaryPrimitives.ReadUInt64LittleEndian(data[8..]);
        payloadLength = (int)length;
        return true;
    }
}
