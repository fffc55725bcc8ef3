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
    internal EgressRule(bool allow, int index, HostPattern host, IReadOnlyList<int>? ports, IReadOnlySet<string>? methods, IReadOnlyList<PathGlob>? paths, IReadOnlyList<PathGlob>? lowerPaths, EgressInject inject)
    {
        Allow = allow;
        Index = index;
        HostPattern = host;
        Ports = ports;
        Methods = methods;
        Paths = paths;
        _lowerPaths = lowerPaths;
        Inject = inject;
    }

    /// <summary>The path globs lower-cased: deny rules match case-insensitively (some upstreams do).</summary>
    private readonly IReadOnlyList<PathGlob>? _lowerPaths;

    public bool Allow { get; }

    public int Index { get; }

    public string Host => HostPattern.Pattern;

    public HostPattern HostPattern { get; }

    /// <summary>Null = any port for HTTP and TLS; raw TCP needs the port named here.</summary>
    public IReadOnlyList<int>? Ports { get; }

    public IReadOnlySet<string>? Methods { get; }

    public IReadOnlyList<PathGlob>? Paths { get; }

    public EgressInject Inject { get; }

    /// <summary>How events name the rule, e.g. <c>allow[1] *.pypi.org</c>.</summary>
    public string Name => $"{(Allow ? "allow" : "deny")}[{Index}] {Host}";

    /// <summary>True when the rule says nothing about requests (no methods, no paths): it covers whole connections.</summary>
    public bool ConnectionLevel => Methods is null && Paths is null;

    public bool MatchesHost(string host) => HostPattern.Matches(host);

    public bool MatchesPort(int port) => Ports is null || Ports.Contains(port);

    /// <summary>An allow rule's test: every reading of the path must lie inside the rule (see <see cref="RequestPath"/>).</summary>
    public bool MatchesRequest(string method, RequestPath path) =>
        (Methods is null || Methods.Contains(method)) && (Paths is null || (Paths.Any(p => p.IsMatch(path.Decoded)) && (path.WithoutParameters is not { } bare || Paths.Any(p => p.IsMatch(bare)))));

    /// <summary>A deny rule's test: any reading of the path, compared case-insensitively, is enough.</summary>
    public bool MatchesRequestAnyReading(string method, RequestPath path) =>
        (Methods is null || Methods.Contains(method)) && (_lowerPaths is null || _lowerPaths.Any(p => p.IsMatch(path.Lower) || (path.LowerWithoutParameters is { } bare && p.IsMatch(bare))));
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
/// <c>**</c> across), matched against the request's decoded path without its query (see <see cref="RequestPath"/>).
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
    public IEnumerable<string> SecretNames() => SecretUses().Select(u => u.Secret).Distinct(StringComparer.Ordinal);

    /// <summary>Every (rule, secret) pair where an allow rule injects the secret (each pair once).</summary>
    public IEnumerable<(EgressRule Rule, string Secret)> SecretUses() =>
        Allow.SelectMany(r => r.Inject.Headers.Values.Concat(r.Inject.Query.Values).SelectMany(SecretNamesIn).Distinct(StringComparer.Ordinal).Select(s => (r, s)));

    /// <summary>The names of the <c>${secret:NAME}</c> references in one inject value.</summary>
    public static IEnumerable<string> SecretNamesIn(string template) => SecretReference().Matches(template).Select(m => m.Groups[1].Value);

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

    /// <summary>One HTTP request; <paramref name="rawPath"/> as sent (no query). A path that can be read more than one way is denied.</summary>
    public EgressDecision DecideRequest(string host, int port, string method, string rawPath) =>
        RequestPath.Parse(rawPath, out var problem) is { } path
            ? DecideRequest(host, port, method, path)
            : new(false, $"path is not canonical: {problem}");

    /// <summary>
    /// One HTTP request. Deny rules match any reading of the path case-insensitively; allow rules
    /// must match every reading exactly (see <see cref="RequestPath"/>).
    /// </summary>
    public EgressDecision DecideRequest(string host, int port, string method, RequestPath path)
    {
        if (AllowAll)
        {
            return new(true, "default: every host (no egress rules)");
        }

        foreach (var rule in Deny)
        {
            if (rule.MatchesHost(host) && rule.MatchesPort(port) && rule.MatchesRequestAnyReading(method, path))
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

        return new(false, $"no rule allows {method} {host}{path.Decoded}");
    }

    /// <summary>The decoded path rules are matched against; null (deny) when it can be read more than one way (see <see cref="RequestPath"/>).</summary>
    public static string? CanonicalPath(string rawPath) => RequestPath.Parse(rawPath, out _)?.Decoded;

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

        HostPattern? host = null;
        if (!item.TryGetProperty("host", out var hostElement) || hostElement.ValueKind != JsonValueKind.String)
        {
            errors.Add($"{at}.host is required (a name or glob like \"*.pypi.org\")");
        }
        else
        {
            host = HostPattern.TryParse(hostElement.GetString()!, out var error);
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
        List<PathGlob>? lowerPaths = null;
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
                        if (PathGlob.TryParse(glob!.Pattern.ToLowerInvariant(), out var lower, out _))
                        {
                            (lowerPaths ??= []).Add(lower!);
                        }
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

        if (paths is not null && (lowerPaths?.Count ?? 0) != paths.Count)
        {
            errors.Add($"{at}.paths: a glob cannot be matched case-insensitively");
        }

        return errors.Count > before || host is null
            ? null
            : new EgressRule(allow, index, host, ports, methods, paths, lowerPaths, inject);
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

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    [GeneratedRegex(@"\$\{secret:([A-Za-z0-9_.-]{1,64})\}")]
    private static partial Regex SecretReference();

    [GeneratedRegex("^[A-Z]{1,20}$")]
    private static partial Regex MethodPattern();

    [GeneratedRegex("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")]
    private static partial Regex HeaderNamePattern();

    [GeneratedRegex("^[a-z0-9.-]+$")]
    private static partial Regex HostNamePattern();
}

public sealed class EgressPolicyException(string message) : Exception(message);
