using Microsoft.AspNetCore.Http;

namespace Hive.Wire;

/// <summary>What a server handler knows about its call.</summary>
public sealed class CallContext
{
    internal CallContext(HttpContext httpContext, DateTimeOffset? deadline, CancellationToken cancellationToken)
    {
        HttpContext = httpContext;
        Deadline = deadline;
        CancellationToken = cancellationToken;
    }

    /// <summary>Fires when the client cancels, the connection drops or the deadline passes.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>The client's deadline, if it sent <c>grpc-timeout</c>.</summary>
    public DateTimeOffset? Deadline { get; }

    /// <summary>The full gRPC method path, e.g. <c>/hive.v1.Agent/Exec</c>.</summary>
    public string Method => HttpContext.Request.Path.Value ?? string.Empty;

    /// <summary>The underlying HTTP/2 request, for request headers (metadata).</summary>
    public HttpContext HttpContext { get; }
}
