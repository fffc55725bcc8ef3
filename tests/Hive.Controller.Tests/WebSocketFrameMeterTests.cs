using System.Buffers.Binary;
using Hive.Controller.Forwarding;

namespace Hive.Controller.Tests;

/// <summary><c>ingress.websocket</c> counts message bytes from the raw frames YARP relays.</summary>
public sealed class WebSocketFrameMeterTests
{
    [Test]
    public void Counts_data_payload_not_headers_masks_or_control_frames_however_the_bytes_are_split()
    {
        var stream = Concat(
            Frame(0x1, masked: true, payload: 4),          // text "ping"
            Frame(0x9, masked: true, payload: 3),          // ping: control
            Frame(0x2, masked: false, payload: 300),       // binary, 16-bit length
            Frame(0x0, masked: true, payload: 70_000),     // continuation, 64-bit length
            Frame(0x8, masked: true, payload: 6));         // close "\x03\xe8done": control

        foreach (var chunk in new[] { 1, 2, 3, 7, 13, 4096, stream.Length })
        {
            var meter = new WebSocketFrameMeter();
            for (var i = 0; i < stream.Length; i += chunk)
            {
                meter.Observe(stream.AsSpan(i, Math.Min(chunk, stream.Length - i)));
            }

            Assert.That(meter.MessageBytes, Is.EqualTo(4 + 300 + 70_000), $"split every {chunk} bytes");
        }
    }

    [Test]
    public void Empty_frames_count_nothing_and_do_not_lose_the_next_header()
    {
        var meter = new WebSocketFrameMeter();
        meter.Observe(Concat(Frame(0x1, masked: true, payload: 0), Frame(0x1, masked: true, payload: 5)));
        Assert.That(meter.MessageBytes, Is.EqualTo(5));
    }

    private static byte[] Frame(int opcode, bool masked, int payload)
    {
        var header = new List<byte> { (byte)(0x80 | opcode) };
        var mask = masked ? 0x80 : 0;
        if (payload < 126)
        {
            header.Add((byte)(mask | payload));
        }
        else if (payload <= ushort.MaxValue)
        {
            header.Add((byte)(mask | 126));
            header.AddRange([(byte)(payload >> 8), (byte)payload]);
        }
        else
        {
            header.Add((byte)(mask | 127));
            var length = new byte[8];
            BinaryPrimitives.WriteUInt64BigEndian(length, (ulong)payload);
            header.AddRange(length);
        }

        if (masked)
        {
            header.AddRange([0x12, 0x34, 0x56, 0x78]);
        }

        // Payload bytes that look like headers (0x81, 0xFF) must not confuse the meter.
        return [.. header, .. Enumerable.Range(0, payload).Select(i => (byte)(i % 2 == 0 ? 0x81 : 0xFF))];
    }

    private static byte[] Concat(params byte[][] frames) => [.. frames.SelectMany(f => f)];
}
