namespace Hive.Controller.Api.Access;

/// <summary>
/// Which <c>Host</c> values the Controller answers to. Without an API key only loopback names (and
/// <c>--allowed-hosts</c>): a page on evil.example that re-binds its name to 127.0.0.1 (DNS
/// rebinding) reaches the loopback port, but its requests say <c>Host: evil.example</c> and are
/// refused before anything else runs. With a key every name is accepted unless
/// <c>--allowed-hosts</c> narrows it (the key is what protects a keyed Controller).
/// </summary>
internal static class HostCheck
{
    /// <summary>Names that can only ever reach this machine's loopback: never re-bindable by a web page.</summary>
    private static readonly string[] LoopbackNames = ["localhost", "127.0.0.1", "[::1]"];

    /// <summary>The patterns (ASP.NET Core host patterns: exact names or <c>*.example.com</c>) to accept; null = any.</summary>
    public static IList<Microsoft.Extensions.Primitives.StringSegment>? Patterns(string? apiKey, string listenHost, IReadOnlyList<string> allowed)
    {
        if (apiKey is not null && allowed.Count == 0)
        {
            return null;
        }

        // The address the Controller listens on is a name it answers to (a keyless one may listen on 127.0.0.2).
        var names = LoopbackNames.Concat(allowed).ToList();
        if (System.Net.IPAddress.TryParse(listenHost, out var address) && !address.Equals(System.Net.IPAddress.Any) && !address.Equals(System.Net.IPAddress.IPv6Any))
        {
            names.Add(address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString());
        }

        return [.. names.Distinct(StringComparer.OrdinalIgnoreCase).Select(n => new Microsoft.Extensions.Primitives.StringSegment(n))];
    }

    public static IApplicationBuilder UseHostCheck(this IApplicationBuilder app, IList<Microsoft.Extensions.Primitives.StringSegment>? patterns)
    {
        if (patterns is null)
        {
            return app;
        }

        return app.Use((http, next) =>
        {
            // HostString.MatchesAny is the matcher of ASP.NET Core's host filtering (ports ignored, punycode, wildcards).
            var host = http.Request.Host;
            if (host.HasValue && HostString.MatchesAny(host.Value, patterns))
            {
                return next(http);
            }

            return ErrorHandling.WriteErrorAsync(http, StatusCodes.Status400BadRequest,
                $"Host '{host.Value}' is not a name this Controller answers to (without an API key: loopback names and --allowed-hosts only)");
        });
    }
}
