using System.Text.RegularExpressions;

namespace Hive.Policy.Net;

/// <summary>
/// A host name or glob of an egress rule or a secret's <c>hosts</c>: lower-case letters, digits,
/// <c>-</c>, <c>.</c> and <c>*</c>. <c>*</c> matches within one label, a leading <c>*.</c> one or
/// more labels (<c>*.pypi.org</c> covers <c>files.pypi.org</c> and <c>a.b.pypi.org</c>, not
/// <c>pypi.org</c>), <c>**</c> anything. IP addresses are refused: rules name hosts.
/// </summary>
public sealed partial class HostPattern
{
    private readonly Regex _regex;

    private HostPattern(string pattern, Regex regex)
    {
        Pattern = pattern;
        _regex = regex;
    }

    /// <summary>The pattern as written (lower-cased).</summary>
    public string Pattern { get; }

    /// <summary>True when the pattern has no wildcard: it names exactly one host.</summary>
    public bool IsLiteral => !Pattern.Contains('*', StringComparison.Ordinal);

    public bool Matches(string host) => _regex.IsMatch(host);

    /// <summary>Parses <paramref name="pattern"/> (lower-cased first); null with <paramref name="error"/> when it is not a host glob.</summary>
    public static HostPattern? TryParse(string pattern, out string? error)
    {
        error = null;
        pattern = pattern.ToLowerInvariant();
        if (pattern.Length is 0 or > 253 || !GlobPattern().IsMatch(pattern) || pattern.Contains("..", StringComparison.Ordinal) || pattern.StartsWith('.') || pattern.EndsWith('.'))
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
        return new HostPattern(pattern, new Regex("^" + regex + "$", RegexOptions.CultureInvariant, Hive.Policy.Fs.PathGlob.MatchTimeout));
    }

    /// <summary>
    /// True when every host <paramref name="other"/> can match is matched by this pattern too.
    /// Conservative (glob containment in general is not worth the risk of a mistake): a literal host
    /// this pattern matches; the same pattern; anything under <c>**</c>; and, for <c>*.X</c> or
    /// <c>**.X</c> with a literal X, any pattern of the form <c>P.X</c> with a non-empty P. Whatever
    /// else is reported as not covered, so a rule is refused rather than a secret sent too far.
    /// </summary>
    public bool Covers(HostPattern other)
    {
        if (other.IsLiteral)
        {
            return Matches(other.Pattern);
        }

        if (Pattern == other.Pattern || Pattern == "**")
        {
            return true;
        }

        var suffix = Pattern.StartsWith("**.", StringComparison.Ordinal) ? Pattern[2..] : Pattern.StartsWith("*.", StringComparison.Ordinal) ? Pattern[1..] : null;
        return suffix is not null
            && !suffix.Contains('*', StringComparison.Ordinal)
            && other.Pattern.Length > suffix.Length
            && other.Pattern.EndsWith(suffix, StringComparison.Ordinal);
    }

    public override string ToString() => Pattern;

    private static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "…";

    [GeneratedRegex("^[a-z0-9*.-]+$")]
    private static partial Regex GlobPattern();
}
