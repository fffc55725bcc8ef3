using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;

namespace Hive.Wire.Internal;

/// <summary>Request content that frames and sends messages as the source yields them (client streaming).</summary>
internal sealed class PushStreamContent<T> : HttpContent
    where T : IMessage<T>
{
    private readonly IAsyncEnumerable<T> _source;

    public PushStreamContent(IAsyncEnumerable<T> source)
    {
        _source = source;
        Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        await foreach (var message in _source.WithCancellation(cancellationToken))
        {
            await Framing.WriteAsync(writer, message, cancellationToken);
        }

        await writer.CompleteAsync();
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
