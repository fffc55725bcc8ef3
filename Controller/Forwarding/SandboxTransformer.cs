using Yarp.ReverseProxy.Forwarder;

namespace Hive.Controller.Forwarding;

/// <summary>
/// How one request is forwarded into a sandbox by YARP's <see cref="IHttpForwarder"/>: YARP copies
/// the fields, <see cref="HeaderPolicy"/> takes out what must not pass either way, and the target
/// is the exact path and query given (the caller's own encoding, not a re-encoded route value).
/// </summary>
/// <param name="pathAndQuery">Path and query on the sandbox's server, starting with '/'.</param>
/// <param name="host">The <c>Host</c> the sandbox's server sees; null: the destination's own.</param>
/// <param name="forwardedPrefix">The public path prefix (<c>X-Forwarded-Prefix</c>, with <c>X-Forwarded-Host</c>/<c>-Proto</c>); null: no forwarding fields.</param>
internal sealed class SandboxTransformer(string pathAndQuery, string? host, string? forwardedPrefix) : HttpTransformer
{
    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        HeaderPolicy.StripRequest(httpContext.Request.Headers, proxyRequest);
        if (host is not null)
        {
            proxyRequest.Headers.Host = host;
        }

        if (forwardedPrefix is not null)
        {
            proxyRequest.Headers.TryAddWithoutValidation("X-Forwarded-Prefix", forwardedPrefix);
            proxyRequest.Headers.TryAddWithoutValidation("X-Forwarded-Proto", httpContext.Request.Scheme);
            proxyRequest.Headers.TryAddWithoutValidation("X-Forwarded-Host", httpContext.Request.Host.ToString());
        }

        proxyRequest.RequestUri = new Uri(destinationPrefix + pathAndQuery);
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        if (!await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken) || proxyResponse is null)
        {
            return false;
        }

        HeaderPolicy.StripResponse(proxyResponse, httpContext.Response.Headers);
        HeaderPolicy.MarkSandboxContent(httpContext.Response);
        httpContext.Response.Headers["X-Accel-Buffering"] = "no"; // SSE and other streams pass at once through a front proxy too
        return true;
    }

    /// <summary>Trailers are not passed on (they never were): a sandbox's answer ends with its body.</summary>
    public override ValueTask TransformResponseTrailersAsync(HttpContext httpContext, HttpResponseMessage proxyResponse, CancellationToken cancellationToken) => default;
}
