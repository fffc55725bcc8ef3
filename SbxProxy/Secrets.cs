namespace Hive.SbxProxy;

/// <summary>
/// The host-side secret store (<c>&lt;data&gt;/secrets/&lt;name&gt;</c>, written by the Controller's
/// secrets API). Values are read when a request needs them and cached by file mtime; the sandbox
/// never sees the directory, and events never carry a value.
/// </summary>
internal sealed class Secrets(string dir)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (DateTime Stamp, string Value)> _cache = new(StringComparer.Ordinal);
    private string[] _known = [];

    /// <summary>Every value looked up so far (for redaction).</summary>
    public IReadOnlyCollection<string> KnownValues => _known;

    public string? Get(string name)
    {
        if (dir.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name.StartsWith('.'))
        {
            return null;
        }

        var path = Path.Combine(dir, name);
        try
        {
            var stamp = File.GetLastWriteTimeUtc(path);
            if (!File.Exists(path))
            {
                return null;
            }

            lock (_gate)
            {
                if (_cache.TryGetValue(name, out var cached) && cached.Stamp == stamp)
                {
                    return cached.Value;
                }
            }

            var value = File.ReadAllText(path);
            lock (_gate)
            {
                _cache[name] = (stamp, value);
                _known = _cache.Values.Select(v => v.Value).Where(v => v.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
            }

            return value;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
