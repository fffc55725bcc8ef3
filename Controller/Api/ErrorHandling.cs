using System.Text.Json;
using Hive.Wire;
using Microsoft.AspNetCore.Http.Features;

namespace Hive.Controller.Api;

/// <summary>
/// Turns every failure into the seed's error shape <c>{"error": "…"}</c>: expected ones keep their
/// status, gRPC failures from Sbxd are mapped, anything else is a logged 500 without internals.
/// </summary>
internal static partial class ErrorHandling
{
    public static IApplicationBuilder UseJsonErrors(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        try
        {
            await next(http);
        }
        catch (Exception ex) when (!http.Response.HasStarted)
        {
            var (status, message) = Map(ex, http);
            if (status == 0)
            {
                return; // client went away
            }

            if (status >= 500)
            {
                var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Hive.Controller.Api");
                LogFailure(logger, http.Request.Method, http.Request.Path, status, ex);
            }

            http.Response.Clear();
            await WriteErrorAsync(http, status, message);
        }
        catch (Exception ex) when (http.Response.HasStarted)
        {
            // Mid-stream failure (e.g. a download whose sandbox died): the only honest signal left is an aborted response.
            var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Hive.Controller.Api");
            LogAborted(logger, http.Request.Method, http.Request.Path, ex.Message);
            http.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            http.Abort();
        }
    });

    public static Task WriteErrorAsync(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(new ErrorBody(message), ApiJson.Options, http.RequestAborted);
    }

    private static (int Status, string Message) Map(Exception ex, HttpContext http) => ex switch
    {
        ApiException api => (api.StatusCode, api.Message),
        BadHttpRequestException bad => (bad.StatusCode, bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request body too large" : bad.Message),
        JsonException json => (StatusCodes.Status400BadRequest, "invalid JSON: " + json.Message),
        RpcException rpc => MapRpc(rpc),
        OperationCanceledException when http.RequestAborted.IsCancellationRequested => (0, string.Empty),
        _ => (StatusCodes.Status500InternalServerError, "internal error: " + ex.Message),
    };

    private static (int, string) MapRpc(RpcException rpc) => rpc.StatusCode switch
    {
        StatusCode.NotFound => (StatusCodes.Status404NotFound, rpc.Detail),
        StatusCode.InvalidArgument or StatusCode.FailedPrecondition or StatusCode.OutOfRange => (StatusCodes.Status400BadRequest, rpc.Detail),
        StatusCode.PermissionDenied => (StatusCodes.Status403Forbidden, rpc.Detail),
        StatusCode.AlreadyExists => (StatusCodes.Status409Conflict, rpc.Detail),
        StatusCode.ResourceExhausted => (StatusCodes.Status507InsufficientStorage, rpc.Detail),
        StatusCode.Unavailable => (StatusCodes.Status503ServiceUnavailable, "sandbox unavailable: " + rpc.Detail),
        StatusCode.DeadlineExceeded => (StatusCodes.Status504GatewayTimeout, rpc.Detail),
        _ => (StatusCodes.Status500InternalServerError, rpc.Detail),
    };

    [LoggerMessage(EventId = 100, Level = LogLevel.Error, Message = "{Method} {Path} failed with {Status}")]
    private static partial void LogFailure(ILogger logger, string method, string path, int status, Exception ex);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "{Method} {Path} aborted mid-response: {Reason}")]
    private static partial void LogAborted(ILogger logger, string method, string path, string reason);
}

internal sealed record ErrorBody(string Error);
