using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Hive.Wire.Internal;

namespace Hive.Wire;

/// <summary>
/// A gRPC client over one multiplexed HTTP/2 connection pool (SocketsHttpHandler, prior-knowledge h2c).
/// Thread-safe; keep one per peer for the life of the process.
/// </summary>
/// <remarks>
/// Pitfalls this handles (DESIGN.md): trailers are only readable after the body hit EOF, and a
/// failed call may arrive "Trailers-Only" with the status in the response headers.
/// </remarks>
public sealed class GrpcChannel : IDisposable
{
    private static readonly MediaTypeHeaderValue GrpcContentType = new("application/grpc");

    private readonly HttpMessageInvoker _invoker;
    private readonly Uri _baseAddress;
    private readonly string _target;

    private GrpcChannel(SocketsHttpHandler handler, Uri baseAddress, string target)
    {
        handler.EnableMultipleHttp2Connections = true;
        handler.InitialHttp2StreamWindowSize = 4 * 1024 * 1024;
        handler.PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan;
        handler.UseProxy = false;
        handler.AllowAutoRedirect = false;
        _invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        _baseAddress = baseAddress;
        _target = target;
    }

    /// <summary>A channel to a server listening on the Unix socket at <paramref name="path"/>.</summary>
    public static GrpcChannel ForUnixSocket(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var handler = new SocketsHttpHandler { ConnectCallback = UnixSocketConnector(path) };
        return new GrpcChannel(handler, new Uri("http://localhost"), path);
    }

    /// <summary>A <see cref="SocketsHttpHandler.ConnectCallback"/> that connects every request to the Unix socket at <paramref name="path"/>.</summary>
    public static Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> UnixSocketConnector(string path)
    {
        var endpoint = new UnixDomainSocketEndPoint(path);
        return async (_, ct) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(endpoint, ct);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
    }

    /// <summary>A channel to <c>http://host:port</c> over TCP (prior-knowledge HTTP/2); for tests and interop.</summary>
    public static GrpcChannel ForAddress(Uri address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return new GrpcChannel(new SocketsHttpHandler(), address, address.ToString());
    }

    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(string method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>, new()
    {
        var content = new ByteArrayContent(Framing.ToArray(request));
        content.Headers.ContentType = GrpcContentType;
        return await SingleResponseAsync<TResponse>(method, content, options);
    }

    public async Task<TResponse> ClientStreamingAsync<TRequest, TResponse>(string method, IAsyncEnumerable<TRequest> requests, CallOptions options = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(requests);
        return await SingleResponseAsync<TResponse>(method, new PushStreamContent<TRequest>(requests), options);
    }

    public IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(string method, TRequest request, CallOptions options = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>, new()
    {
        var content = new ByteArrayContent(Framing.ToArray(request));
        content.Headers.ContentType = GrpcContentType;
        return StreamResponsesAsync<TResponse>(method, content, options, CancellationToken.None);
    }

    /// <summary>Both directions stream; messages from <paramref name="requests"/> are sent as they are produced.</summary>
    public IAsyncEnumerable<TResponse> DuplexStreamingAsync<TRequest, TResponse>(string method, IAsyncEnumerable<TRequest> requests, CallOptions options = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>, new()
    {
        ArgumentNullException.ThrowIfNull(requests);
        return StreamResponsesAsync<TResponse>(method, new PushStreamContent<TRequest>(requests), options, CancellationToken.None);
    }

    public void Dispose() => _invoker.Dispose();

    private async Task<TResponse> SingleResponseAsync<TResponse>(string method, HttpContent content, CallOptions options)
        where TResponse : class, IMessage<TResponse>, new()
    {
        TResponse? result = null;
        await foreach (var message in StreamResponsesAsync<TResponse>(method, content, options, CancellationToken.None))
        {
            if (result is not null)
            {
                throw new RpcException(StatusCode.Internal, $"{method}: more than one response message");
            }

            result = message;
        }

        return result ?? throw new RpcException(StatusCode.Internal, $"{method}: the response carried no message");
    }

    private async IAsyncEnumerable<TResponse> StreamResponsesAsync<TResponse>(
        string method, HttpContent content, CallOptions options, [EnumeratorCancellation] CancellationToken enumeratorToken)
        where TResponse : class, IMessage<TResponse>, new()
    {
        using var deadline = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken, enumeratorToken, deadline.Token);
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_baseAddress, method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        if (options.Timeout is { } timeout)
        {
            request.Headers.TryAddWithoutValidation(GrpcTimeout.Header, GrpcTimeout.Format(timeout));
            deadline.CancelAfter(timeout);
        }

        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(request, linked.Token);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw MapFailure(ex, method, deadline, options.CancellationToken, enumeratorToken);
        }

        using (response)
        {
            if (TryGetStatus(response, response.Headers) is { } headerStatus)
            {
                ThrowIfError(headerStatus, method); // Trailers-Only
                yield break;
            }

            EnsureGrpcResponse(response, method);
            Stream body;
            try
            {
                body = await response.Content.ReadAsStreamAsync(linked.Token);
            }
            catch (Exception ex) when (ex is not RpcException)
            {
                throw MapFailure(ex, method, deadline, options.CancellationToken, enumeratorToken);
            }

            var reader = PipeReader.Create(body);
            try
            {
                while (true)
                {
                    TResponse? message;
                    try
                    {
                        message = await Framing.ReadAsync<TResponse>(reader, linked.Token);
                    }
                    catch (Exception ex) when (ex is not RpcException)
                    {
                        throw MapFailure(ex, method, deadline, options.CancellationToken, enumeratorToken);
                    }

                    if (message is null)
                    {
                        break;
                    }

                    yield return message;
                }
            }
            finally
            {
                await reader.CompleteAsync();
            }

            var status = TryGetStatus(response, response.TrailingHeaders)
                ?? throw new RpcException(StatusCode.Internal, $"{method}: the stream ended without grpc-status (peer at {_target} went away?)");
            ThrowIfError(status, method);
        }
    }

    private static (StatusCode Code, string Message)? TryGetStatus(HttpResponseMessage response, HttpHeaders headers)
    {
        if (!headers.TryGetValues("grpc-status", out var values))
        {
            return null;
        }

        var raw = values.FirstOrDefault();
        if (!int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var code))
        {
            return (StatusCode.Unknown, $"malformed grpc-status '{raw}'");
        }

        var message = headers.TryGetValues("grpc-message", out var messages) ? StatusMessage.Decode(messages.FirstOrDefault()) : string.Empty;
        _ = response;
        return ((StatusCode)code, message);
    }

    private static void ThrowIfError((StatusCode Code, string Message) status, string method)
    {
        if (status.Code != StatusCode.OK)
        {
            throw new RpcException(status.Code, status.Message.Length > 0 ? status.Message : $"{method} failed with {status.Code}");
        }
    }

    private static void EnsureGrpcResponse(HttpResponseMessage response, string method)
    {
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var code = response.StatusCode switch
            {
                HttpStatusCode.BadRequest => StatusCode.Internal,
                HttpStatusCode.Unauthorized => StatusCode.Unauthenticated,
                HttpStatusCode.Forbidden => StatusCode.PermissionDenied,
                HttpStatusCode.NotFound => StatusCode.Unimplemented,
                HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable
                    or HttpStatusCode.GatewayTimeout => StatusCode.Unavailable,
                _ => StatusCode.Unknown,
            };
            throw new RpcException(code, $"{method}: HTTP {(int)response.StatusCode} from the server");
        }

        var type = response.Content.Headers.ContentType?.MediaType;
        if (type is null || !type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase))
        {
            throw new RpcException(StatusCode.Internal, $"{method}: unexpected content type '{type}'");
        }
    }

    private Exception MapFailure(Exception ex, string method, CancellationTokenSource deadline, CancellationToken caller, CancellationToken enumerator)
    {
        if (deadline.IsCancellationRequested && !caller.IsCancellationRequested && !enumerator.IsCancellationRequested)
        {
            return new RpcException(StatusCode.DeadlineExceeded, $"{method}: deadline exceeded", ex);
        }

        if (caller.IsCancellationRequested || enumerator.IsCancellationRequested)
        {
            return new OperationCanceledException($"{method}: cancelled", ex, caller.IsCancellationRequested ? caller : enumerator);
        }

        if (ex is HttpProtocolException { ErrorCode: 0x8 })
        {
            return new RpcException(StatusCode.Cancelled, $"{method}: the server cancelled the call", ex);
        }

        return ex switch
        {
            InvalidProtocolBufferException => new RpcException(StatusCode.Internal, $"{method}: malformed response: {ex.Message}", ex),
            HttpRequestException or IOException or SocketException =>
                new RpcException(StatusCode.Unavailable, $"{method}: cannot reach {_target}: {ex.Message}", ex),
            _ => ex,
        };
    }
}
