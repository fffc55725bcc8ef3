using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hive.Wire.Internal;

/// <summary>
/// Runs one server call: validates the request, applies the deadline, runs the handler and ends
/// the call with <c>grpc-status</c>/<c>grpc-message</c> — as trailers after a body, or in the
/// headers when no message was written ("Trailers-Only", PROTOCOL-HTTP2.md).
/// </summary>
internal static class ServerCalls
{
    public static async Task RunAsync(HttpContext http, Func<CallContext, Task> body)
    {
        var response = http.Response;
        if (!IsGrpcRequest(http.Request))
        {
            response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            response.Headers.ContentType = "text/plain";
            await response.WriteAsync("gRPC requests only (application/grpc over HTTP/2)\n", http.RequestAborted);
            return;
        }

        DateTimeOffset? deadline = null;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        if (GrpcTimeout.TryParse(http.Request.Headers[GrpcTimeout.Header], out var timeout))
        {
            deadline = DateTimeOffset.UtcNow + timeout;
            cts.CancelAfter(timeout);
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        var context = new CallContext(http, deadline, cts.Token);

        StatusCode status;
        string message;
        try
        {
            await body(context);
            (status, message) = (StatusCode.OK, string.Empty);
        }
        catch (RpcException ex)
        {
            (status, message) = (ex.StatusCode, ex.Detail);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            if (http.RequestAborted.IsCancellationRequested)
            {
                return; // The client is gone: nobody to tell.
            }

            (status, message) = (StatusCode.DeadlineExceeded, "deadline exceeded");
        }
        catch (Exception ex) when (ex is IOException or ConnectionResetException && http.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception ex)
        {
            var logger = http.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("Hive.Wire.Server");
            logger?.LogError(ex, "Unhandled exception in gRPC handler {Method}", context.Method);
            (status, message) = (StatusCode.Internal, "internal error: " + ex.Message);
        }

        try
        {
            WriteStatus(response, status, message);
        }
        catch (InvalidOperationException) when (http.RequestAborted.IsCancellationRequested)
        {
            // Stream already reset by the client.
        }
    }

    public static async Task<TRequest> ReadSingleAsync<TRequest>(CallContext context)
        where TRequest : class, IMessage<TRequest>, new()
    {
        var request = await Framing.ReadAsync<TRequest>(context.HttpContext.Request.BodyReader, context.CancellationToken);
        return request ?? throw new RpcException(StatusCode.Internal, "the request carried no message");
    }

    public static async IAsyncEnumerable<TRequest> ReadAllAsync<TRequest>(
        CallContext context, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where TRequest : class, IMessage<TRequest>, new()
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, cancellationToken);
        var reader = context.HttpContext.Request.BodyReader;
        while (await Framing.ReadAsync<TRequest>(reader, linked.Token) is { } message)
        {
            yield return message;
        }
    }

    public static async Task WriteAsync<TResponse>(CallContext context, TResponse message, CancellationToken cancellationToken)
        where TResponse : IMessage<TResponse>
    {
        await Framing.WriteAsync(context.HttpContext.Response.BodyWriter, message, cancellationToken);
    }

    private static void WriteStatus(HttpResponse response, StatusCode status, string message)
    {
        var code = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (!response.HasStarted)
        {
            response.Headers["grpc-status"] = code;
            if (message.Length > 0)
            {
                response.Headers["grpc-message"] = StatusMessage.Encode(message);
            }

            return;
        }

        response.AppendTrailer("grpc-status", code);
        if (message.Length > 0)
        {
            response.AppendTrailer("grpc-message", StatusMessage.Encode(message));
        }
    }

    private static bool IsGrpcRequest(HttpRequest request) =>
        HttpMethods.IsPost(request.Method)
        && request.ContentType is { } type
        && type.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase)
        && request.Protocol == "HTTP/2";
}

/// <summary>Writes streamed responses straight to the HTTP/2 body, flushing each message.</summary>
internal sealed class ServerStreamWriter<T>(CallContext context) : IServerStreamWriter<T>
    where T : IMessage<T>
{
    public async ValueTask WriteAsync(T message, CancellationToken cancellationToken = default)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            cancellationToken = context.CancellationToken;
        }

        await ServerCalls.WriteAsync(context, message, cancellationToken);
    }
}
