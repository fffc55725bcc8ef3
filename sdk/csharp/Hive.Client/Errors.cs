namespace Hive.Client;

/// <summary>Every failure the SDK reports: the API's HTTP status (0 = no answer) and its message.</summary>
public class HiveApiException : Exception
{
    public HiveApiException()
    {
    }

    public HiveApiException(string message)
        : base(message)
    {
    }

    public HiveApiException(string message, Exception inner)
        : base(message, inner)
    {
    }

    public HiveApiException(int status, string message, Exception? inner = null)
        : base(message, inner)
    {
        Status = status;
    }

    /// <summary>HTTP status of the answer; 0 when the Controller could not be reached.</summary>
    public int Status { get; }

    internal static async Task<HiveApiException> FromAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var message = string.IsNullOrEmpty(text) ? $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}" : text;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            if (doc.RootElement.TryGetProperty("error", out var error) && error.GetString() is { } m)
            {
                message = m;
            }
        }
        catch (System.Text.Json.JsonException)
        {
            // not JSON: keep the text
        }

        var status = (int)response.StatusCode;
        return status switch
        {
            404 => new HiveNotFoundException(message),
            401 or 403 => new HiveAuthException(status, message),
            409 => new HivePolicyException(status, message),
            _ => new HiveApiException(status, message),
        };
    }
}

/// <summary>404: the sandbox (or file, or running command) does not exist.</summary>
public sealed class HiveNotFoundException(string message) : HiveApiException(404, message);

/// <summary>401/403: no or wrong API key.</summary>
public sealed class HiveAuthException(int status, string message) : HiveApiException(status, message);

/// <summary>409: refused by a rule — e.g. a sandbox exists with a different configuration (the message says what differs).</summary>
public sealed class HivePolicyException(int status, string message) : HiveApiException(status, message);
