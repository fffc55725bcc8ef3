using System.Collections.Frozen;
using Microsoft.Extensions.Primitives;

namespace Hive.Controller.Forwarding;

/// <summary>
/// The one header policy of everything the Controller forwards into a sandbox and back (ingress
/// <c>/proxy/:port/</c> and <c>/mcp</c>, both through <see cref="SandboxTransformer"/>): no ambient
/// credential goes in, nothing that acts on the Controller's origin comes out, and what comes out
/// cannot act as that origin.
/// </summary>
/// <remarks>
/// YARP's forwarder already leaves out the fields that only make sense on one connection (its own
/// list: <c>Connection</c>, <c>Transfer-Encoding</c>, <c>Upgrade</c>, <c>TE</c>, <c>Keep-Alive</c>,
/// <c>Proxy-*</c>, …) and frames bodies itself. This policy is applied on top of it, so a field
/// stays out whether or not a later YARP version keeps it on its list.
/// <para>
/// Sandbox pages are served on the Controller's own origin (<c>/api/v1/hiveboxes/:id/proxy/…</c>).
/// Instead of one origin per sandbox (wildcard DNS, host routing), every response from a sandbox
/// carries <c>Content-Security-Policy: sandbox …</c> without <c>allow-same-origin</c>: a browser
/// runs its document in an opaque origin, so its scripts cannot read the origin's storage (a
/// dashboard's key), cookies or other sandboxes' pages, and every request they make says
/// <c>Origin: null</c> / <c>Sec-Fetch-Site: cross-site</c> — which the API refuses
/// (<see cref="Api.Access.SameOriginRequirement"/>).
/// </para>
/// </remarks>
internal static class HeaderPolicy
{
    /// <summary>Scripts and forms run, but in an opaque origin: no <c>allow-same-origin</c>, no top navigation.</summary>
    public const string SandboxPolicy = "sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads";

    /// <summary>
    /// Every field the policy stops, and in which direction — one table for both forwarders and
    /// both directions, so the two cannot drift apart.
    /// </summary>
    private static readonly FrozenDictionary<string, Stopped> Fields = new Dictionary<string, Stopped>(StringComparer.OrdinalIgnoreCase)
    {
        // RFC 9110 §7.6.1 connection-specific fields, and the pre-standard ones still seen.
        ["Connection"] = Stopped.Both,
        ["Keep-Alive"] = Stopped.Both,
        ["Proxy-Connection"] = Stopped.Both,
        ["TE"] = Stopped.Both,
        ["Trailer"] = Stopped.Both,
        ["Transfer-Encoding"] = Stopped.Both,
        ["Upgrade"] = Stopped.Both,
        ["Proxy-Authenticate"] = Stopped.Both,
        ["Proxy-Authorization"] = Stopped.Both,

        // The caller's credentials: the Controller's key, cookies of its origin.
        ["Authorization"] = Stopped.In,
        ["Cookie"] = Stopped.In,

        // The address the forwarder sets itself, and forwarding fields a caller could forge (the forwarder sets its own).
        ["Host"] = Stopped.In,
        ["Forwarded"] = Stopped.In,
        ["X-Forwarded-For"] = Stopped.In,
        ["X-Forwarded-Host"] = Stopped.In,
        ["X-Forwarded-Proto"] = Stopped.In,
        ["X-Forwarded-Prefix"] = Stopped.In,

        // No WebSocket extension (compression) is negotiated through the tunnel: the audited
        // message bytes are the bytes the two ends exchanged, as before frames passed as they are.
        ["Sec-WebSocket-Extensions"] = Stopped.In,

        // Fields that would act on the Controller's whole origin or host: cookies, wiping its
        // storage, HSTS and alternative services, credential prompts for the origin (no
        // credential reaches the sandbox anyway).
        ["Set-Cookie"] = Stopped.Out,
        ["Set-Cookie2"] = Stopped.Out,
        ["Clear-Site-Data"] = Stopped.Out,
        ["Strict-Transport-Security"] = Stopped.Out,
        ["Alt-Svc"] = Stopped.Out,
        ["WWW-Authenticate"] = Stopped.Out,
    }.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);

    [Flags]
    private enum Stopped
    {
        None = 0,

        /// <summary>Never sent into a sandbox.</summary>
        In = 1,

        /// <summary>Never passed back from a sandbox.</summary>
        Out = 2,

        Both = In | Out,
    }

    /// <summary>Removes from <paramref name="request"/> every field the caller's <paramref name="incoming"/> headers must not carry into the sandbox.</summary>
    public static void StripRequest(IHeaderDictionary incoming, HttpRequestMessage request)
    {
        var nominated = Nominated(incoming.Connection);
        Strip(request.Headers, nominated);
        if (request.Content is { } content)
        {
            Strip(content.Headers, nominated);
        }

        // Each collection takes only its own kind of field (Remove throws for the other), so each is stripped of what it holds.
        static void Strip(System.Net.Http.Headers.HttpHeaders headers, FrozenSet<string> nominated)
        {
            foreach (var name in headers.NonValidated.Select(h => h.Key).ToList())
            {
                if (Stops(name, Stopped.In) || nominated.Contains(name))
                {
                    headers.Remove(name);
                }
            }
        }
    }

    /// <summary>Removes from <paramref name="outgoing"/> every field of the sandbox's answer that must not reach the caller.</summary>
    public static void StripResponse(HttpResponseMessage from, IHeaderDictionary outgoing)
    {
        var nominated = Nominated(from.Headers.TryGetValues("Connection", out var connection) ? new StringValues([.. connection]) : StringValues.Empty);
        foreach (var name in outgoing.Keys.ToList())
        {
            if (Stops(name, Stopped.Out) || nominated.Contains(name))
            {
                outgoing.Remove(name);
            }
        }
    }

    /// <summary>A response whose body the sandbox produced: a browser shows it only in an opaque origin.</summary>
    public static void MarkSandboxContent(HttpResponse response) =>
        response.Headers.Append("Content-Security-Policy", SandboxPolicy); // the sandbox's own policy, if any, applies as well

    private static bool Stops(string name, Stopped direction) => Fields.TryGetValue(name, out var stopped) && (stopped & direction) != 0;

    /// <summary>Fields a <c>Connection</c> header names are hop-by-hop too (RFC 9110 §7.6.1).</summary>
    private static FrozenSet<string> Nominated(StringValues connection)
    {
        if (StringValues.IsNullOrEmpty(connection))
        {
            return FrozenSet<string>.Empty;
        }

        var names = new List<string>();
        foreach (var value in connection)
        {
            names.AddRange((value ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        return names.ToFrozenSet(StringComparer.OrdinalIgnoreCase);
    }
}
