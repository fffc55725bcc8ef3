using System.Collections.Frozen;

namespace Hive.Controller.Ingress;

/// <summary>
/// The one header policy of everything the Controller forwards into a sandbox and back (ingress
/// <c>/proxy/:port/</c> and <c>/mcp</c>): no ambient credential goes in, nothing that acts on the
/// Controller's origin comes out, and what comes out cannot act as that origin.
/// </summary>
/// <remarks>
/// Sandbox pages are served on the Controller's own origin (<c>/api/v1/hiveboxes/:id/proxy/…</c>).
/// Instead of one origin per sandbox (wildcard DNS, host routing), every response from a sandbox
/// carries <c>Content-Security-Policy: sandbox …</c> without <c>allow-same-origin</c>: a browser
/// runs its document in an opaque origin, so its scripts cannot read the origin's storage (a
/// dashboard's key), cookies or other sandboxes' pages, and every request they make says
/// <c>Origin: null</c> / <c>Sec-Fetch-Site: cross-site</c> — which the API refuses
/// (<see cref="Api.Access.SameOriginRequirement"/>).
/// </remarks>
internal static class IngressHeaders
{
    /// <summary>Scripts and forms run, but in an opaque origin: no <c>allow-same-origin</c>, no top navigation.</summary>
    public const string SandboxPolicy = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

    /// <summary>RFC 9110 §7.6.1 connection-specific fields, and the pre-standard ones still seen.</summary>
    private static readonly string[] HopByHop = ["Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization"];

    /// <summary>
    /// Never sent into a sandbox: hop-by-hop fields; the caller's credentials (the Controller's
    /// key, cookies of its origin); framing and addressing the forwarder sets itself; forwarding
    /// fields a caller could forge; the WebSocket handshake (the forwarder makes its own).
    /// </summary>
    private static readonly FrozenSet<string> NotForwarded = HopByHop.Concat([
        "Authorization", "Cookie", "Host", "Content-Length", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Prefix",
        "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol",
    ]).ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Never passed back from a sandbox: hop-by-hop fields, and fields that would act on the
    /// Controller's whole origin or host — cookies (<c>Set-Cookie</c>), wiping its storage
    /// (<c>Clear-Site-Data</c>), HSTS and alternative services, and credential prompts for the
    /// origin (<c>WWW-Authenticate</c>; no credential reaches the sandbox anyway).
    /// </summary>
    private static readonly FrozenSet<string> NotReturned = HopByHop.Concat([
        "Set-Cookie", "Set-Cookie2", "Clear-Site-Data", "Strict-Transport-Security", "Alt-Svc", "WWW-Authenticate",
    ]).ToFrozenSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Copies the caller's headers that may enter the sandbox onto <paramref name="to"/> (and its content).</summary>
    public static void CopyRequest(HttpRequest from, HttpRequestMessage to)
    {
        var nominated = Nominated(from.Headers.Connection);
        foreach (var (name, values) in from.Headers)
        {
            if (NotForwarded.Contains(name) || nominated.Contains(name))
            {
                continue;
            }

            if (!to.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                to.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
    }

    /// <summary>Status and the headers that may leave the sandbox onto <paramref name="to"/>, marked as sandbox content.</summary>
    public static void CopyResponse(HttpResponseMessage from, HttpResponse to)
    {
        to.StatusCode = (int)from.StatusCode;
        var nominated = Nominated(from.Headers.Connection);
        foreach (var (name, values) in from.Headers.Concat(from.Content.Headers))
        {
            if (!NotReturned.Contains(name) && !nominated.Contains(name))
            {
                to.Headers[name] = values.ToArray();
            }
        }

        MarkSandboxContent(to);
    }

    /// <summary>A response whose body the sandbox produced: a browser shows it only in an opaque origin.</summary>
    public static void MarkSandboxContent(HttpResponse response) =>
        response.Headers.Append("Content-Security-Policy", SandboxPolicy); // the sandbox's own policy, if any, applies as well

    /// <summary>Fields a <c>Connection</c> header names are hop-by-hop too (RFC 9110 §7.6.1).</summary>
    private static IReadOnlySet<string> Nominated(IEnumerable<string?> connection)
    {
        if (!connection.Any())
        {
            return FrozenSet<string>.Empty;
        }

        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var value in connection)
        {
            foreach (var token in (value ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                names.Add(token);
            }
        }

        return names;
    }
}
