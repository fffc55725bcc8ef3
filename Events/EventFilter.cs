using Hive.Protos.V1;

namespace Hive.Events;

/// <summary>
/// Which events a reader wants: kinds by prefix at a dot boundary (<c>fs</c> matches <c>fs.read</c>,
/// <c>net.http</c> matches <c>net.http</c>), decisions likewise (<c>deny</c> matches <c>deny-ro</c>).
/// </summary>
public sealed class EventFilter
{
    public static readonly EventFilter All = new([], []);

    private readonly string[] _kinds;
    private readonly string[] _decisions;

    public EventFilter(IEnumerable<string> kinds, IEnumerable<string> decisions)
    {
        _kinds = [.. kinds.Select(k => k.Trim()).Where(k => k.Length > 0).Distinct(StringComparer.Ordinal)];
        _decisions = [.. decisions.Select(d => d.Trim()).Where(d => d.Length > 0).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Parses comma-separated lists (query parameters). Each entry: letters, digits, '.', '_', '-'.</summary>
    public static bool TryParse(string? kinds, string? decisions, out EventFilter filter, out string? error)
    {
        var k = Split(kinds);
        var d = Split(decisions);
        var bad = k.Concat(d).FirstOrDefault(v => v.Length > 64 || !v.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'));
        filter = new EventFilter(k, d);
        error = bad is null ? null : $"invalid filter value '{bad}'";
        return bad is null;
    }

    public bool Matches(Event e) => Matches(e.Kind, _kinds, '.') && Matches(e.Decision, _decisions, '-');

    private static bool Matches(string value, string[] wanted, char separator)
    {
        if (wanted.Length == 0)
        {
            return true;
        }

        foreach (var w in wanted)
        {
            if (value.StartsWith(w, StringComparison.Ordinal) && (value.Length == w.Length || value[w.Length] == separator))
            {
                return true;
            }
        }

        return false;
    }

    private static string[] Split(string? list) =>
        string.IsNullOrWhiteSpace(list) ? [] : list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
