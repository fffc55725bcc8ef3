using System.Text;
using System.Text.RegularExpressions;

namespace Hive.Policy.Fs;

/// <summary>
/// A path pattern of an ACL rule: <c>*</c> matches within one segment, <c>**</c> any number of
/// segments (<c>/a/**</c> also matches <c>/a</c> itself), <c>?</c> one character other than
/// <c>/</c>; everything else is literal. Patterns are absolute and normalized.
/// </summary>
public sealed class PathGlob
{
    /// <summary>
    /// Bounds a pathological match (several <c>**</c> against a long path the agent chose) so it cannot
    /// hold a file system thread; a match that runs out is an error (EIO, fail closed). Generous on
    /// purpose: a 100 ms bound was met by an 8-character path during a GC pause on a loaded machine,
    /// and a compiled backtracking regex is several times cheaper per match than NonBacktracking,
    /// which matters on the file system's hot path.
    /// </summary>
    internal static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    private readonly Regex _regex;
    private GlobAutomaton? _automaton;

    private PathGlob(string pattern, Regex regex, bool namesEntry, int literalSegments, int literalChars, int globstars, int wildcards)
    {
        Pattern = pattern;
        _regex = regex;
        Specificity = (namesEntry ? 1 : 0, literalSegments, literalChars, -globstars, -wildcards);
    }

    public string Pattern { get; }

    /// <summary>
    /// Higher is more specific, compared in order: a pattern that names the entry itself (its last
    /// segment is not <c>**</c>, e.g. <c>/w/**/*.env</c>) beats one that covers a subtree
    /// (<c>/w/inputs/**</c>); then more wildcard-free segments; more literal characters; fewer
    /// <c>**</c>; fewer other wildcards.
    /// </summary>
    public (int NamesEntry, int LiteralSegments, int LiteralChars, int NegGlobstars, int NegWildcards) Specificity { get; }

    public bool IsMatch(string path) => _regex.IsMatch(path);

    /// <summary>The pattern as an inspectable automaton (built on first use: only rename checks need it).</summary>
    internal GlobAutomaton Automaton => LazyInitializer.EnsureInitialized(ref _automaton, () => GlobAutomaton.Build(Pattern));

    public static bool TryParse(string pattern, out PathGlob? glob, out string? error)
    {
        glob = null;
        error = Validate(pattern);
        if (error is not null)
        {
            return false;
        }

        var segments = pattern.Split('/')[1..];
        var regex = new StringBuilder("^");
        int literalSegments = 0, literalChars = 0, globstars = 0, wildcards = 0;
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            if (segment == "**")
            {
                globstars++;

                // "/**" at the end also matches the directory itself; in the middle, zero or more segments.
                regex.Append(i == segments.Length - 1 ? "(?:/.*)?" : "(?:/[^/]+)*");
                continue;
            }

            regex.Append('/');
            var literal = true;
            foreach (var c in segment)
            {
                switch (c)
                {
                    case '*':
                        regex.Append("[^/]*");
                        wildcards++;
                        literal = false;
                        break;
                    case '?':
                        regex.Append("[^/]");
                        wildcards++;
                        literal = false;
                        break;
                    default:
                        regex.Append(Regex.Escape(c.ToString()));
                        literalChars++;
                        break;
                }
            }

            if (literal)
            {
                literalSegments++;
            }
        }

        if (pattern == "/")
        {
            regex.Append('/');
        }

        regex.Append('$');
        var namesEntry = segments.Length > 0 && segments[^1] != "**" && pattern != "/";
        glob = new PathGlob(pattern, new Regex(regex.ToString(), RegexOptions.CultureInvariant | RegexOptions.Compiled, MatchTimeout), namesEntry, literalSegments, literalChars, globstars, wildcards);
        return true;
    }

    private static string? Validate(string pattern)
    {
        if (string.IsNullOrEmpty(pattern) || !pattern.StartsWith('/'))
        {
            return $"path pattern '{pattern}' must be absolute";
        }

        if (pattern.Length > 4096 || pattern.Contains('\0', StringComparison.Ordinal))
        {
            return "path pattern is too long or contains NUL";
        }

        if (pattern.Length > 1 && pattern.EndsWith('/'))
        {
            return $"path pattern '{pattern}' must not end with '/' (use '{pattern}**' for everything below)";
        }

        foreach (var segment in pattern.Split('/')[1..])
        {
            if (pattern != "/" && segment.Length == 0)
            {
                return $"path pattern '{pattern}' has an empty segment";
            }

            if (segment is "." or "..")
            {
                return $"path pattern '{pattern}' must not contain '.' or '..' segments";
            }

            if (segment.Contains("**", StringComparison.Ordinal) && segment != "**")
            {
                return $"path pattern '{pattern}': '**' must be a whole segment";
            }

            if (segment.IndexOfAny(['[', ']', '{', '}', '\\']) >= 0)
            {
                return $"path pattern '{pattern}': only '*', '**' and '?' are special; '[', ']', '{{', '}}' and '\\' are not allowed";
            }
        }

        return null;
    }
}
