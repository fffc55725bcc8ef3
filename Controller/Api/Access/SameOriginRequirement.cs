using Microsoft.AspNetCore.Authorization;

namespace Hive.Controller.Api.Access;

/// <summary>
/// Part of the fallback policy: a request a browser made on behalf of another origin is refused
/// (403), WebSocket handshakes included — whatever the key, and above all without one, where a
/// web page could otherwise drive a loopback Controller (simple requests need no CORS preflight).
/// </summary>
/// <remarks>
/// Two signals, either one refuses (Fetch Standard §3.1 <c>Origin</c>; Fetch Metadata
/// <c>Sec-Fetch-Site</c>):
/// <list type="bullet">
/// <item><c>Origin</c> present and not this server's own origin — <c>null</c> included: that is
/// what a sandboxed document (every ingress page, see <c>HeaderPolicy</c>), a <c>data:</c> URL or
/// a redirect chain sends, and it must not pass for "no origin".</item>
/// <item><c>Sec-Fetch-Site</c> other than <c>same-origin</c> or <c>none</c> (typed URL, bookmark):
/// <c>cross-site</c> and <c>same-site</c> (another port on the same host is another origin).</item>
/// </list>
/// Clients that are not browsers (curl, the SDKs, the CLI) send neither header and pass.
/// </remarks>
internal sealed class SameOriginRequirement : AuthorizationHandler<SameOriginRequirement>, IAuthorizationRequirement
{
    public static readonly SameOriginRequirement Instance = new();

    protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, SameOriginRequirement requirement)
    {
        if (context.Resource is not HttpContext http)
        {
            context.Fail(new AuthorizationFailureReason(this, "cross-origin check: no HTTP request"));
            return Task.CompletedTask;
        }

        if (Refusal(http.Request) is { } reason)
        {
            context.Fail(new AuthorizationFailureReason(this, reason));
        }
        else
        {
            context.Succeed(requirement);
        }

        return Task.CompletedTask;
    }

    /// <summary>Why the request is cross-origin, or null when it is not.</summary>
    internal static string? Refusal(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"];
        if (site.Count > 1 || (site.Count == 1 && site[0] is not ("same-origin" or "none")))
        {
            return $"cross-origin request refused (Sec-Fetch-Site: {site}): the API only answers its own origin and clients that are not browsers";
        }

        var origin = request.Headers.Origin;
        if (origin.Count == 0)
        {
            return null;
        }

        return origin.Count == 1 && IsSameOrigin(origin[0], request.Host)
            ? null
            : $"cross-origin request refused (Origin: {origin}): the API only answers its own origin and clients that are not browsers";
    }

    /// <summary>
    /// <paramref name="origin"/> names this server: same host name and port. The scheme is not
    /// compared (a TLS-terminating proxy in front sees https where Kestrel sees http); a Host
    /// without a port means the default port of the origin's scheme.
    /// </summary>
    private static bool IsSameOrigin(string? origin, HostString host)
    {
        if (origin is null || !Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")
            || uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.UserInfo.Length > 0 || !host.HasValue)
        {
            return false;
        }

        return string.Equals(uri.Host, host.Host, StringComparison.OrdinalIgnoreCase) && uri.Port == (host.Port ?? (uri.Scheme == "https" ? 443 : 80));
    }
}
