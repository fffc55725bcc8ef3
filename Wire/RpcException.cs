namespace Hive.Wire;

/// <summary>A call that ended with a non-OK gRPC status, on either side of the wire.</summary>
public sealed class RpcException : Exception
{
    public RpcException(StatusCode statusCode, string detail)
        : base($"{statusCode}: {detail}")
    {
        StatusCode = statusCode;
        Detail = detail;
    }

    public RpcException(StatusCode statusCode, string detail, Exception inner)
        : base($"{statusCode}: {detail}", inner)
    {
        StatusCode = statusCode;
        Detail = detail;
    }

    public StatusCode StatusCode { get; }

    /// <summary>The human-readable <c>grpc-message</c>.</summary>
    public string Detail { get; }
}
