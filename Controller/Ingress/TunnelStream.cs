namespace Hive.Controller.Ingress;

/// <summary>
/// One byte stream over a full-duplex HTTP/2 request to the agent's <c>/tunnel/{port}</c>: writes go
/// into the request body, reads come from the response body. .NET has no ready-made duplex
/// HttpContent, so this small pair (content + stream) is written by hand.
/// </summary>
internal sealed class TunnelStream : Stream
{
    private readonly Task<HttpResponseMessage> _response;
    private readonly DuplexContent _content;
    private readonly Stream _up;
    private HttpResponseMessage? _opened;
    private Stream? _down;

    private TunnelStream(Task<HttpResponseMessage> response, DuplexContent content, Stream up)
    {
        _response = response;
        _content = content;
        _up = up;
    }

    /// <summary>
    /// Opens the tunnel. The agent's answer (200, or 502 when nothing listens on the port) only
    /// arrives once the first bytes flow, so it is awaited on the first read, not here.
    /// </summary>
    public static async Task<Stream> OpenAsync(HttpMessageInvoker agent, int port, CancellationToken cancellationToken)
    {
        var content = new DuplexContent();
        var request = Mcp.AgentHttp.Request(HttpMethod.Post, "/tunnel/" + port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Content = content;

        // Not bound to the token: the handler cancels it once the connection is set up, and the
        // tunnel lives as long as the pooled connection.
        var response = agent.SendAsync(request, CancellationToken.None);
        var first = await Task.WhenAny(content.Stream, response).WaitAsync(cancellationToken);
        if (first == response)
        {
            using var refused = await response;
            content.Complete();
            throw new HttpRequestException(await refused.Content.ReadAsStringAsync(cancellationToken), null, refused.StatusCode);
        }

        return new TunnelStream(response, content, await content.Stream);
    }

    private async ValueTask<Stream> DownAsync(CancellationToken cancellationToken)
    {
        if (_down is not null)
        {
            return _down;
        }

        _opened = await _response.WaitAsync(cancellationToken);
        if (!_opened.IsSuccessStatusCode)
        {
            var reason = await _opened.Content.ReadAsStringAsync(cancellationToken);
            throw new IOException(reason.Length > 0 ? reason : $"the tunnel was refused ({(int)_opened.StatusCode})");
        }

        return _down = await _opened.Content.ReadAsStreamAsync(cancellationToken);
    }

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        await (await DownAsync(cancellationToken)).ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _up.WriteAsync(buffer, cancellationToken);
        await _up.FlushAsync(cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken) => _up.FlushAsync(cancellationToken);

    public override void Flush() => _up.Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _content.Complete();
            _down?.Dispose();
            _opened?.Dispose();
            _ = _response.ContinueWith(t => t.Result.Dispose(), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion, TaskScheduler.Default);
        }

        base.Dispose(disposing);
    }

    /// <summary>Request content that hands out its stream and stays open until completed.</summary>
    private sealed class DuplexContent : HttpContent
    {
        private readonly TaskCompletionSource<Stream> _stream = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<Stream> Stream => _stream.Task;

        public void Complete() => _done.TrySetResult();

        protected override Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context, CancellationToken cancellationToken)
        {
            _stream.TrySetResult(stream);
            await _done.Task.WaitAsync(cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = -1;
            return false;
        }
    }
}
