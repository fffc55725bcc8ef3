using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;

namespace Hive.Wire.Internal;

/// <summary>
/// The gRPC length-prefixed message framing (grpc/doc/PROTOCOL-HTTP2.md):
/// <code>
/// +------------+----------------------+-------------------+
/// | compressed | length (u32, BE)     | message bytes ... |
/// |  1 byte    | 4 bytes              | length bytes      |
/// +------------+----------------------+-------------------+
/// </code>
/// Compression is never negotiated, so a set compressed flag is a protocol error.
/// </summary>
internal static class Framing
{
    public const int HeaderSize = 5;

    /// <summary>Largest message accepted from the peer (file data travels in 64 KiB chunks).</summary>
    public const int MaxMessageSize = 16 * 1024 * 1024;

    public static async ValueTask WriteAsync<T>(PipeWriter writer, T message, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        Write(writer, message);
        var result = await writer.FlushAsync(cancellationToken);
        if (result.IsCanceled)
        {
            throw new OperationCanceledException(cancellationToken);
        }
    }

    public static void Write<T>(IBufferWriter<byte> writer, T message)
        where T : IMessage<T>
    {
        var size = message.CalculateSize();
        var span = writer.GetSpan(HeaderSize + size);
        span[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(span.Slice(1, 4), (uint)size);
        message.WriteTo(span.Slice(HeaderSize, size));
        writer.Advance(HeaderSize + size);
    }

    public static byte[] ToArray<T>(T message)
        where T : IMessage<T>
    {
        var buffer = new ArrayBufferWriter<byte>(HeaderSize + message.CalculateSize());
        Write(buffer, message);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads one message, or returns null at a clean end of stream.</summary>
    public static async ValueTask<T?> ReadAsync<T>(PipeReader reader, CancellationToken cancellationToken)
        where T : class, IMessage<T>, new()
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (TryParse(ref buffer, out T? message))
            {
                reader.AdvanceTo(buffer.Start);
                return message;
            }

            if (result.IsCompleted)
            {
                var leftover = buffer.Length;
                reader.AdvanceTo(buffer.End);
                if (leftover == 0)
                {
                    return null;
                }

                throw new RpcException(StatusCode.Internal, $"stream ended inside a message ({leftover} bytes of a frame)");
            }

            if (result.IsCanceled)
            {
                throw new OperationCanceledException(cancellationToken);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static bool TryParse<T>(ref ReadOnlySequence<byte> buffer, out T? message)
        where T : class, IMessage<T>, new()
    {
        message = null;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        buffer.Slice(0, HeaderSize).CopyTo(header);
        if (header[0] != 0)
        {
            throw new RpcException(StatusCode.Unimplemented, "compressed messages are not supported");
        }

        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > MaxMessageSize)
        {
            throw new RpcException(StatusCode.ResourceExhausted, $"message of {length} bytes exceeds the limit of {MaxMessageSize}");
        }

        if (buffer.Length < HeaderSize + length)
        {
            return false;
        }

        var payload = buffer.Slice(HeaderSize, length);
        message = Parsers<T>.Instance.ParseFrom(payload);
        buffer = buffer.Slice(payload.End);
        return true;
    }
}
