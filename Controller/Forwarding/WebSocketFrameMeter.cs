namespace Hive.Controller.Forwarding;

/// <summary>
/// Counts the message bytes in one direction of a WebSocket connection from the raw frames
/// (RFC 6455 §5.2): the payload of data frames (text, binary, continuation), not frame headers,
/// masks or control frames (ping, pong, close) — what <c>ingress.websocket</c> reports as
/// <c>bytes_in</c>/<c>bytes_out</c>. YARP passes frames through as bytes and never parses them,
/// and no package parses a byte stream that is not its own socket, so this small reader is here.
/// </summary>
/// <remarks>
/// <code>
///  byte 0: FIN RSV1-3 opcode(4)   byte 1: MASK len(7)   [len 126: +2 bytes, 127: +8 bytes]   [MASK: +4 bytes]   payload
/// </code>
/// Frames may be split across reads at any byte, so the header is gathered byte by byte.
/// </remarks>
internal sealed class WebSocketFrameMeter
{
    private readonly byte[] _header = new byte[14];
    private int _headerBytes;
    private ulong _payloadLeft;
    private bool _dataFrame;

    /// <summary>Payload bytes of data frames seen so far.</summary>
    public long MessageBytes { get; private set; }

    public void Observe(ReadOnlySpan<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            if (_payloadLeft > 0)
            {
                var n = (int)Math.Min(_payloadLeft, (ulong)bytes.Length);
                if (_dataFrame)
                {
                    MessageBytes += n;
                }

                _payloadLeft -= (ulong)n;
                bytes = bytes[n..];
                continue;
            }

            _header[_headerBytes++] = bytes[0];
            bytes = bytes[1..];
            if (_headerBytes < 2 || _headerBytes < HeaderLength())
            {
                continue;
            }

            var length = (ulong)(_header[1] & 0x7F);
            if (length == 126)
            {
                length = (ulong)((_header[2] << 8) | _header[3]);
            }
            else if (length == 127)
            {
                length = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(_header.AsSpan(2, 8));
            }

            _dataFrame = (_header[0] & 0x0F) is 0x0 or 0x1 or 0x2;
            _payloadLeft = length;
            _headerBytes = 0;
        }
    }

    private int HeaderLength()
    {
        var length = _header[1] & 0x7F;
        var extended = length == 126 ? 2 : length == 127 ? 8 : 0;
        var mask = (_header[1] & 0x80) != 0 ? 4 : 0;
        return 2 + extended + mask;
    }
}
