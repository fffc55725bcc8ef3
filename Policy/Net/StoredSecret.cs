using System.Text.Json;

namespace Hive.Policy.Net;

/// <summary>
/// One secret of the host-side store (<c>&lt;data&gt;/secrets/NAME</c>, written by the Controller,
/// read by SbxProxy) and where it may be sent. The file is JSON:
/// <c>{"value": "...", "hosts": ["api.github.com", "*.openai.com"], "allow_http": false}</c>.
/// A file in any other shape is a value stored before secrets were bound to hosts (a plain value
/// file): it is never injected until it is stored again with its hosts.
/// </summary>
public sealed class StoredSecret
{
    public const int MaxHosts = 64;

    private StoredSecret(string value, IReadOnlyList<HostPattern>? hosts, bool allowHttp)
    {
        Value = value;
        Hosts = hosts;
        AllowHttp = allowHttp;
    }

    public string Value { get; }

    /// <summary>Where the value may be sent; null for a plain value file (bound to nothing: never injected).</summary>
    public IReadOnlyList<HostPattern>? Hosts { get; }

    /// <summary>May the value travel over plain HTTP (default no: TLS only).</summary>
    public bool AllowHttp { get; }

    public bool Bound => Hosts is not null;

    /// <summary>Reads a stored file's text: the JSON form, or else a plain value (legacy).</summary>
    public static StoredSecret Parse(string text)
    {
        if (text.StartsWith('{'))
        {
            try
            {
                using var doc = JsonDocument.Parse(text);
                var root = doc.RootElement;
                if (root.ValueKind == JsonValueKind.Object &&
                    root.TryGetProperty("value", out var value) && value.ValueKind == JsonValueKind.String &&
                    root.TryGetProperty("hosts", out var hostsElement) && hostsElement.ValueKind == JsonValueKind.Array)
                {
                    var errors = new List<string>();
                    var hosts = ParseHosts(hostsElement, errors);
                    var allowHttp = root.TryGetProperty("allow_http", out var http) && http.ValueKind == JsonValueKind.True;

                    // A damaged host list binds the value to nothing rather than to less than was written.
                    return new StoredSecret(value.GetString()!, errors.Count == 0 ? hosts : [], allowHttp);
                }
            }
            catch (JsonException)
            {
                // Not the JSON form: a plain value that happens to start with '{'.
            }
        }

        return new StoredSecret(text, null, false);
    }

    /// <summary>The file's text for a value bound to <paramref name="hosts"/> (already validated).</summary>
    public static string Serialize(string value, IEnumerable<string> hosts, bool allowHttp)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("value", value);
            json.WriteStartArray("hosts");
            foreach (var host in hosts)
            {
                json.WriteStringValue(host);
            }

            json.WriteEndArray();
            json.WriteBoolean("allow_http", allowHttp);
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Validates a <c>hosts</c> list (1 … 64 host globs, as in egress rules); every problem is added to <paramref name="errors"/>.</summary>
    public static List<HostPattern> ParseHosts(JsonElement hosts, List<string> errors)
    {
        var result = new List<HostPattern>();
        if (hosts.ValueKind != JsonValueKind.Array || hosts.GetArrayLength() is 0 or > MaxHosts)
        {
            errors.Add($"hosts must be a list of 1 to {MaxHosts} host names or globs like [\"api.github.com\", \"*.openai.com\"]");
            return result;
        }

        foreach (var item in hosts.EnumerateArray())
        {
            string? error = "entries must be strings";
            var pattern = item.ValueKind == JsonValueKind.String ? HostPattern.TryParse(item.GetString()!, out error) : null;
            if (pattern is null)
            {
                errors.Add("hosts: " + error);
            }
            else if (!result.Any(p => p.Pattern == pattern.Pattern))
            {
                result.Add(pattern);
            }
        }

        return result;
    }

    /// <summary>True when the value may be sent to every host <paramref name="rule"/> can match.</summary>
    public bool Covers(HostPattern rule) => Hosts?.Any(h => h.Covers(rule)) == true;

    /// <summary>Null when the value may go to <paramref name="host"/> over this connection; otherwise why not (no value in it).</summary>
    public string? RefusalFor(string name, string host, bool tls)
    {
        if (Hosts is null)
        {
            return $"secret '{name}' is not bound to any host (stored before secrets had hosts); store it again with its hosts";
        }

        if (!Hosts.Any(h => h.Matches(host)))
        {
            return $"secret '{name}' may not be sent to {host} (its hosts: {(Hosts.Count == 0 ? "none" : string.Join(", ", Hosts))})";
        }

        return !tls && !AllowHttp ? $"secret '{name}' may only be sent over TLS (this request is plain HTTP; the secret does not allow_http)" : null;
    }
}
