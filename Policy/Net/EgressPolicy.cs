using System.Text.Json;
using System.Text.RegularExpressions;
using Hive.Policy.Fs;

namespace Hive.Policy.Net;

/// <summary>Header and query values set on requests a rule allows; values may name host-side secrets as <c>${secret:NAME}</c>.</summary>
public sealed record EgressInject(IReadOnlyDictionary<string, string> Headers, IReadOnlyDictionary<string, string> Query)
{
    public bool IsEmpty => Headers.Count == 0 && Query.Count == 0;
}

/// <summary>One egress rule: a host glob and optional ports, methods and path globs.</summary>
public sealed class EgressRule
{
    internal EgressRule(bool allow, int index, string host, Regex hostRegex, IReadOnlyList<int>? ports, IReadOnlySet<string>? methods, IReadOnlyList<PathGlob>? paths, EgressInject inject)
    {
        Allow = allow;
        Index = index;
        Host = host;
        HostRegex = hostRegex;
        Ports = ports;
        Methods = methods;
        Paths = paths;
        Inject = inject;
    }

    public bool Allow { get; }

    public int Index { get; }

    public string Host { get; }

    private Regex HostRegex { get; }

    /// <summary>Null = any port for HTTP and TLS; raw TCP needs the port named here.</summary>
    public IReadOnlyList<int>? Ports { get; }

    public IReadOnlySet<string>? Methods { get; }

    public IReadOnlyList<PathGlob>? Paths { get; }

    public EgressInject Inject { get; }

    /// <summary>How events name the rule, e.g. <c>allow[1] *.pypi.org</c>.</summary>
    public string Name => $"{(Allow ? "allow" : "deny")}[{Index}] {Host}";

    /// <summary>True when the rule says nothing about requests (no methods, no paths): it covers whole connections.</summary>
    public bool ConnectionLevel => Methods is null && Paths is null;

    public bool MatchesHost(string host) => HostRegex.IsMatch(host);

    public bool MatchesPort(int port) => Ports is null || Ports.Contains(port);

    public bool MatchesRequest(string method, string path) =>
        (Methods is null || Methods.Contains(method)) && (Paths is null || Paths.Any(p => p.IsMatch(path)));
}

/// <summary>The outcome of a decision: allowed or not, which rule said so, and the rule (for inject).</summary>
public readonly record struct EgressDecision(bool Allowed, string Rule, EgressRule? Matched = null);

/// <summary>
/// A sandbox's egress policy: <c>{"allow": [...], "deny": [...]}</c>. Deny rules are checked first,
/// then allow rules, each list in order; the first rule that matches decides; nothing matching is
/// denied. Without any policy (network <c>isolated</c> and no <c>egress</c>) every host is allowed —
/// and still audited.
///
/// Host globs are lower-case names: <c>*</c> matches within one label, a leading <c>*.</c> one or
/// more labels (<c>*.pypi.org</c> covers <c>files.pypi.org</c> and <c>a.b.pypi.org</c>, not
/// <c>pypi.org</c>), <c>**</c> anything. Path globs are the ACL globs (<c>*</c> within a segment,
/// <c>**</c> across), matched against the request's canonical path without its query.
/// </summary>
public sealed partial class EgressPolicy
{
    public const int MaxRules = 256;

    private EgressPolicy(bool allowAll, IReadOnlyList<EgressRule> deny, IReadOnlyList<EgressRule> allow)
    {
        AllowAll = allowAll;
        Deny = deny;
        Allow = allow;
    }

    /// <summary>No rules given: every host allowed (network isolated without egress).</summary>
    public bool AllowAll { get; }

    public IReadOnlyList<EgressRule> Deny { get; }

    public IReadOnlyList<EgressRule> Allow { get; }

    public static EgressPolicy AllowEverything { get; } = new(true, [], []);

    /// <summary>The secret names the rules' inject values refer to.</summary>
    public IEnumerable<string> SecretNames() =>
        Allow.SelectMany(r => r.Inject.Headers.Values.Concat(r.Inject.Query.Values))
            .SelectMany(v => SecretReference().Matches(v).Select(m => m.Groups[1].Value))
            .Distinct(StringComparer.Ordinal);

    /// <summary>
    /// May the sandbox reach <paramref name="host"/> at all (DNS answers, connections)? True when a rule
    /// could allow some request to it and no connection-level deny rule covers every port.
    /// </summary>
    public EgressDecision DecideHost(string host)
    {
        if (AllowAll)
        {
            return new(true, "default: every host (no egress rules)");
        }

        foreach (var rule in Deny)
        {
            if (rule.ConnectionLevel && rule.Ports is null && rule.MatchesHost(host))
            {
                return new(false, rule.Name, rule);
            }
        }

        foreach (var rule in Allow)
        {
            if (rule.MatchesHost(host))
            {
                return new(true, rule.Name, rule);
            }
        }

        return new(false, $"no rule allows host {host}");
    }

    /// <summary>A connection to host:port before anything about its requests is known.</summary>
    /// <param name="raw">True for traffic that is neither HTTP nor TLS: only a rule naming the port allows it.</param>
    public EgressDecision DecideConnection(string host, int port, bool raw)
    {
        if (AllowAll)
        {
            return new(true, "default: every host (no egress rules)");
        }

        foreach (var rule in Deny)
        {
            if (rule.ConnectionLevel && rule.MatchesHost(host) && rule.MatchesPort(port))
            {
                return new(false, rule.Name, rule);
            }
        }

        foreach (var rule in Allow)
        {
            if (rule.MatchesHost(host) && rule.MatchesPort(port) && (!raw || (rule.Ports is not null && rule.ConnectionLevel)))
            {
                return new(true, rule.Name, rule);
            }
        }

        return new(false, raw ? $"no rule allows raw TCP to {host}:{port} (raw TCP needs a rule naming host and port)" : $"no rule allows {host}:{port}");
    }

    /// <summary>One HTTP request. <paramref name="path"/> must be canonical (see <see cref="CanonicalPath"/>).</summary>
    public EgressDecision DecideRequest(string host, int port, string method, string path)
    {
        if (AllowAll)
        {
            return new(true, "default: every host (no egress rules)");
        }

        foreach (var rule in Deny)
        {
            if (rule.MatchesHost(host) && rule.MatchesPort(port) && rule.MatchesRequest(method, path))
            {
                return new(false, rule.Name, rule);
            }
        }

        foreach (var rule in Allow)
        {
            if (rule.MatchesHost(host) && rule.MatchesPort(port) && rule.MatchesRequest(method, path))
            {
                return new(true, rule.Name, rule);
            }
        }

        return new(false, $"no rule allows {method} {host}{path}");
    }

    /// <summary>
    /// The path a request's rules are matched against: percent-escapes of unreserved characters
    /// decoded; null (deny) when the path is not canonical — dot segments, empty segments, encoded
    /// '/', '\' or NUL, anything an upstream server might read differently from the rule.
    /// </summary>
    public static string? CanonicalPath(string rawPath)
    {
        if (rawPath.Length == 0 || rawPath[0] != '/' || rawPath.Length > 8192)
        {
            return null;
        }

        var builder = new System.Text.StringBuilder(rawPath.Length);
        for (var i = 0; i < rawPath.Length; i++)
        {
            var c = rawPath[i];
            if (c == '%')
            {
                if (i + 2 >= rawPath.Length || !Uri.IsHexDigit(rawPath[i + 1]) || !Uri.IsHexDigit(rawPath[i + 2]))
                {
                    return null;
                }

                var decoded = (char)Convert.ToInt32(rawPath.Substring(i + 1, 2), 16);
                if (char.IsAsciiLetterOrDigit(decoded) || decoded is '-' or '_' or '~')
                {
                    builder.Append(decoded);
                }
                else if (decoded is '/' or '\\' or '.' or '\0' or '%')
                {
                    return null;
                }
                else
                {
                    builder.Append(rawPath, i, 3);
                }

                i += 2;
            }
            else if (c is '\\' or '\0' or ' ' || char.IsControl(c))
            {
                return null;
            }
            else
            {
                builder.Append(c);
            }
        }

        var path = builder.ToString();
        foreach (var segment in path.Split('/')[1..^1])
        {
            if (segment is "" or "." or "..")
            {
                return null;
            }
        }

        var last = path[(path.LastIndexOf('/') + 1)..];
        return last is "." or ".." ? null : path;
    }

    /// <summary>Parses and validates a policy (the API's <c>egress</c> object); throws <see cref="EgressPolicyException"/> naming every problem.</summary>
    public static EgressPolicy Parse(JsonElement egress)
    {
        var errors = new List<string>();
        if (egress.ValueKind != JsonValueKind.Object)
        {
            throw new EgressPolicyException("egress must be an object like {\"allow\": [{\"host\": \"api.example.com\"}]}");
        }

        foreach (var property in egress.EnumerateObject())
        {
            if (property.Name is not ("allow" or "deny"))
            {
                errors.Add($"egress: unknown field '{Truncate(property.Name)}' (use allow and deny)");
            }
        }

        var deny = ParseList(egress, "deny", allow: false, errors);
        var allow = ParseList(egress, "allow", allow: true, errors);
        if (deny.Count + allow.Count > MaxRules)
        {
            errors.Add($"egress: at most {MaxRules} rules");
        }

        if (errors.Count > 0)
        {
            throw new EgressPolicyException(string.Join("; ", errors));
        }

        return new EgressPolicy(false, deny, allow);
    }

    public static EgressPolicy Parse(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return Parse(doc.RootElement);
        }
        catch (JsonException ex)
        {
            throw new EgressPolicyException("egress is not valid JSON: " + ex.Message);
        }
    }

    private static List<EgressRule> ParseList(JsonElement egress, string field, bool allow, List<string> errors)
    {
        var rules = new List<EgressRule>();
        if (!egress.TryGetProperty(field, out var list) || list.ValueKind == JsonValueKind.Null)
        {
            return rules;
        }

        if (list.ValueKind != JsonValueKind.Array)
        {
            errors.Add($"egress.{field} must be an array of rules");
            return rules;
        }

        var index = 0;
        foreach (var item in list.EnumerateArray())
        {
            var at = $"egress.{field}[{index}]";
            var rule = ParseRule(item, allow, index, at, errors);
            if (rule is not null)
            {
                rules.Add(rule);
            }

            index++;
        }

        return rules;
    }

    private static EgressRule? ParseRule(JsonElement item, bool allow, int index, string at, List<string> errors)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{at} must be an object with a host");
            return null;
        }

        var before = errors.Count;
        foreach (var property in item.EnumerateObject())
        {
            if (property.Name is not ("host" or "ports" or "methods" or "paths" or "inject"))
            {
                errors.Add($"{at}: unknown field '{Truncate(property.Name)}' (use host, ports, methods, paths, inject)");
            }
        }

        string host = string.Empty;
        Regex? hostRegex = null;
        if (!item.TryGetProperty("host", out var hostElement) || hostElement.ValueKind != JsonValueKind.String)
        {
            errors.Add($"{at}.host is required (a name or glob like \"*.pypi.org\")");
        }
        else
        {
            host = hostElement.GetString()!.ToLowerInvariant();
            hostRegex = HostGlob(host, out var error);
            if (error is not null)
            {
                errors.Add($"{at}.host: {error}");
            }
        }

        List<int>? ports = null;
        if (item.TryGetProperty("ports", out var portsElement) && portsElement.ValueKind != JsonValueKind.Null)
        {
            ports = [];
            if (portsElement.ValueKind != JsonValueKind.Array || portsElement.GetArrayLength() is 0 or > 64)
            {
                errors.Add($"{at}.ports must be a list of 1 to 64 port numbers");
            }
            else
            {
                foreach (var p in portsElement.EnumerateArray())
                {
                    if (p.ValueKind == JsonValueKind.Number && p.TryGetInt32(out var port) && port is >= 1 and <= 65535)
                    {
                        ports.Add(port);
                    }
                    else
                    {
                        errors.Add($"{at}.ports: '{Truncate(p.ToString())}' is not a port number (1-65535)");
                    }
                }
            }
        }

        HashSet<string>? methods = null;
        if (item.TryGetProperty("methods", out var methodsElement) && methodsElement.ValueKind != JsonValueKind.Null)
        {
            methods = new HashSet<string>(StringComparer.Ordinal);
            if (methodsElement.ValueKind != JsonValueKind.Array || methodsElement.GetArrayLength() == 0)
            {
                errors.Add($"{at}.methods must be a non-empty list like [\"GET\", \"POST\"]");
            }
            else
            {
                foreach (var m in methodsElement.EnumerateArray())
                {
                    var method = m.ValueKind == JsonValueKind.String ? m.GetString()!.ToUpperInvariant() : string.Empty;
                    if (!MethodPattern().IsMatch(method))
                    {
                        errors.Add($"{at}.methods: '{Truncate(m.ToString())}' is not an HTTP method");
                    }
                    else
                    {
                        methods.Add(method);
                    }
                }
            }
        }

        List<PathGlob>? paths = null;
        if (item.TryGetProperty("paths", out var pathsElement) && pathsElement.ValueKind != JsonValueKind.Null)
        {
            paths = [];
            if (pathsElement.ValueKind != JsonValueKind.Array || pathsElement.GetArrayLength() == 0)
            {
                errors.Add($"{at}.paths must be a non-empty list of path globs like [\"/repos/**\"]");
            }
            else
            {
                foreach (var p in pathsElement.EnumerateArray())
                {
                    PathGlob? glob = null;
                    string? error = "entries must be strings";
                    if (p.ValueKind != JsonValueKind.String || !PathGlob.TryParse(p.GetString()!, out glob, out error))
                    {
                        errors.Add($"{at}.paths: {error}");
                    }
                    else
                    {
                        paths.Add(glob!);
                    }
                }
            }
        }

        var inject = new EgressInject(new Dictionary<string, string>(), new Dictionary<string, string>());
        if (item.TryGetProperty("inject", out var injectElement) && injectElement.ValueKind != JsonValueKind.Null)
        {
            if (!allow)
            {
                errors.Add($"{at}.inject: only allow rules inject");
            }
            else
            {
                inject = ParseInject(injectElement, at + ".inject", errors);
            }
        }

        return errors.Count > before || hostRegex is null
            ? null
            : new EgressRule(allow, index, host, hostRegex, ports, methods, paths, inject);
    }

    private static EgressInject ParseInject(JsonElement element, string at, List<string> errors)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        if (element.ValueKind != JsonValueKind.Object)
        {
            errors.Add($"{at} must be an object like {{\"headers\": {{\"Authorization\": \"Bearer ${{secret:NAME}}\"}}}}");
            return new EgressInject(headers, query);
        }

        foreach (var property in element.EnumerateObject())
        {
            var target = property.Name switch
            {
                "headers" => headers,
                "query" => query,
                _ => null,
            };
            if (target is null || property.Value.ValueKind != JsonValueKind.Object)
            {
                errors.Add($"{at}: '{Truncate(property.Name)}' must be headers or query, each an object of strings");
                continue;
            }

            foreach (var entry in property.Value.EnumerateObject())
            {
                var value = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()! : null;
                var nameOk = property.Name == "headers" ? HeaderNamePattern().IsMatch(entry.Name) && !ForbiddenInjectHeaders.Contains(entry.Name) : entry.Name.Length is > 0 and <= 256;
                if (!nameOk)
                {
                    errors.Add($"{at}.{property.Name}: '{Truncate(entry.Name)}' cannot be set");
                }
                else if (value is null || value.Length > 8192 || value.Any(c => c is '\r' or '\n' or '\0'))
                {
                    errors.Add($"{at}.{property.Name}.{Truncate(entry.Name)} must be a single-line string");
                }
                else if (SecretReference().Replace(value, string.Empty).Contains("${", StringComparison.Ordinal))
                {
                    errors.Add($"{at}.{property.Name}.{Truncate(entry.Name)}: only ${{secret:NAME}} references are expanded (NAME: letters, digits, '.', '_', '-')");
                }
                else
                {
                    target[entry.Name] = value;
                }
            }
        }

        return new EgressInject(headers, query);
    }

    /// <summary>Framing and routing headers the proxy owns; a rule cannot set them.</summary>
    private static readonly HashSet<string> ForbiddenInjectHeaders = new(StringComparer.OrdinalIgnoreCase)
    {
        "Host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "Te", "Trailer", "Keep-Alive", "Proxy-Connection",
    };

    /// <summary>Expands <c>${secret:NAME}</c> with <paramref name="lookup"/>; null when a secret is missing (the request must not go out).</summary>
    public static string? ExpandSecrets(string template, Func<string, string?> lookup, out string? missing)
    {
        string? absent = null;
        var result = SecretReference().Replace(template, m =>
        {
            var value = lookup(m.Groups[1].Value);
            if (value is null)
            {
                absent ??= m.Groups[1].Value;
                return string.Empty;
            }

            return value;
        });
        missing = absent;
        return absent is null ? result : null;
    }

    /// <summary>Valid host names (what DNS answers are given for).</summary>
    public static bool IsValidHostName(string host) =>
        host.Length is > 0 and <= 253 && HostNamePattern().IsMatch(host) && !host.Split('.').Any(l => l.Length is 0 or > 63);

    private static Regex? HostGlob(string pattern, out string? error)
    {
        error = null;
        if (pattern.Length is 0 or > 253 || !HostGlobPattern().IsMatch(pattern) || pattern.Contains("..", StringComparison.Ordinal) || pattern.StartsWith('.') || pattern.EndsWith('.'))
        {
            error = $"'{Truncate(pattern)}' is not a host name or glob (letters, digits, '-', '.', '*'; IP addresses are not allowed)";
            return null;
        }

        if (System.Net.IPAddress.TryParse(pattern, out _))
        {
            error = $"'{pattern}' is an IP address: rules name hosts (connections by address are never allowed)";
            return null;
        }

        var body = pattern;
        var prefix = string.Empty;
        if (body.StartsWith("*.", StringComparison.Ordinal))
        {
            prefix = "(?:[a-z0-9-]+\\.)+";
            body = body[2..];
        }

        var regex = prefix + Regex.Escape(body).Replace("\\*\\*", ".*", StringComparison.Ordinal).Replace("\\*", "[a-z0-9-]*", StringComparison.Ordinal);
        return new Regex("^" + regex + "$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
    }

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    [GeneratedRegex(@"\$\{secret:([A-Za-z0-9_.-]{1,64})\}")]
    private static partial Regex SecretReference();

    [GeneratedRegex("^[A-Z]{1,20}$")]
    private static partial Regex MethodPattern();

    [GeneratedRegex("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")]
    private static partial Regex HeaderNamePattern();

    [GeneratedRegex("^[a-z0-9*.-]+$")]
    private static partial Regex HostGlobPattern();

    [GeneratedRegex("^[a-z0-9.-]+$")]
    private static partial Regex HostNamePattern();
}

public sealed class EgressPolicyException(string message) : Exception(message);
