using System.Text.Json;
using Hive.Client;

namespace Hive.Cli;

/// <summary>
/// The Controller as the CLI reaches it: through the C# SDK (<see cref="HiveClient"/>), with the
/// SDK's failures turned into the CLI's messages (the API's own message, a hint for 401, the
/// status) — one copy of the HTTP calls, shared with every SDK user.
/// </summary>
internal static class Api
{
    public static HiveClient Connect(string baseUrl, string? apiKey)
    {
        if (!Uri.TryCreate(baseUrl.TrimEnd('/') + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliException($"invalid API URL '{baseUrl}'", 2);
        }

        return new HiveClient(new HiveClientOptions { Url = uri.ToString(), ApiKey = apiKey });
    }

    /// <summary>What <c>hive: …</c> says for a failed call to the Controller at <paramref name="baseUrl"/>.</summary>
    public static string Describe(HiveApiException ex, string baseUrl)
    {
        ArgumentNullException.ThrowIfNull(ex);
        if (ex.Status == 0 && ex.InnerException is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError } unreachable)
        {
            return $"Controller not reachable at {baseUrl.TrimEnd('/')}/ ({unreachable.Message}). Is `hive daemon` (or `make up`) running? Set --api-url or HIVEBOX_API_URL.";
        }

        if (ex.Status == 0)
        {
            return ex.Message;
        }

        var hint = ex.Status == 401 ? " (set --api-key or HIVEBOX_API_KEY)" : string.Empty;
        return $"{ex.Message}{hint} [{ex.Status}]";
    }
}

/// <summary>An error to print as <c>hive: message</c> with an exit code (1 for failures, 2 for usage).</summary>
internal sealed class CliException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

internal static class CliJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        WriteIndented = true,
    };
}
