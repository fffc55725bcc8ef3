using Hive.Controller.Api;
using Hive.Protos.V1;
using Yarp.ReverseProxy.Forwarder;

namespace Hive.Controller.Forwarding;

/// <summary>
/// What a failed forward means for the caller and the audit record. YARP reports failures as a
/// <see cref="ForwarderError"/> and leaves the answer to us: before anything was sent back, the
/// caller gets the API's JSON error naming the reason (the agent's own words, e.g. "nothing is
/// listening on port 9999"); once the sandbox's answer has started, YARP has already cut the
/// connection and only the record says so.
/// </summary>
internal static class ForwardFailure
{
    /// <summary>The reason a forward failed, from the exception YARP kept: the innermost I/O message (the tunnel's refusal), else the outer one.</summary>
    public static string Reason(HttpContext http)
    {
        var exception = http.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (exception is null)
        {
            return "the sandbox did not answer";
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is IOException or HttpRequestException && e.InnerException is null)
            {
                return e.Message;
            }
        }

        return exception.InnerException is IOException inner ? inner.Message : exception.Message;
    }

    /// <summary>
    /// Throws the API error for a forward that failed before the sandbox answered (502, or the
    /// status of a request body Kestrel refused, e.g. 413); records the failure in <paramref name="audit"/>.
    /// </summary>
    public static void ThrowIfRefused(ForwarderError error, HttpContext http, NetEvent audit, Func<string, string> message)
    {
        if (error == ForwarderError.None)
        {
            return;
        }

        if (http.Response.HasStarted)
        {
            audit.Error = "stream ended early"; // YARP reset the connection: the caller sees a truncated answer, not a complete one
            return;
        }

        if (http.RequestAborted.IsCancellationRequested)
        {
            audit.Error = "the caller went away";
            return;
        }

        var exception = http.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (FindBadRequest(exception) is { } bad)
        {
            audit.Status = bad.StatusCode;
            audit.Error = bad.Message;
            throw bad; // mapped like any refused request body (413 "request body too large")
        }

        audit.Error = Reason(http);
        audit.Status = StatusCodes.Status502BadGateway;
        throw new ApiException(StatusCodes.Status502BadGateway, message(audit.Error));
    }

    private static BadHttpRequestException? FindBadRequest(Exception? exception)
    {
        if (exception is AggregateException aggregate)
        {
            return aggregate.InnerExceptions.Select(FindBadRequest).FirstOrDefault(b => b is not null);
        }

        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is BadHttpRequestException bad)
            {
                return bad;
            }
        }

        return null;
    }
}
