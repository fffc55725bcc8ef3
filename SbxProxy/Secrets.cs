using Hive.Policy.Net;

namespace Hive.SbxProxy;

/// <summary>
/// The host-side secret store (<c>&lt;data&gt;/secrets/&lt;name&gt;</c>, written by the Controller's
/// secrets API): each value with the hosts it may be sent to (see <see cref="StoredSecret"/>).
/// Secrets are read when a request needs one and cached by file stamp (modification time and
/// size), so a narrowed host list applies from the next request on; the sandbox never sees the
/// directory, and events never carry a value.
/// </summary>
internal sealed class Secrets(string dir)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ((DateTime, long) Stamp, StoredSecret Secret)> _cache = new(StringComparer.Ordinal);
    private string[] _known = [];

    /// <summary>Every value looked up so far (for redaction).</summary>
    public IReadOnlyCollection<string> KnownValues => _known;

    /// <summary>The stored secret, or null when it is not set (or cannot be read).</summary>
    public StoredSecret? Get(string name)
    {
        if (dir.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name.StartsWith('.'))
        {
            return null;
        }

        var file = new FileInfo(Path.Combine(dir, name));
        try
        {
            if (!file.Exists)
            {
                return null;
            }

            var stamp = (file.LastWriteTimeUtc, file.Length);
            lock (_gate)
            {
                if (_cache.TryGetValue(name, out var cached) && cached.Stamp == stamp)
                {
                    return cached.Secret;
                }
            }

            var secret = StoredSecret.Parse(File.ReadAllText(file.FullName));
            lock (_gate)
            {
                _cache[name] = (stamp, secret);
                _known = _cache.Values.Select(v => v.Secret.Value).Where(v => v.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
            }

            return secret;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
