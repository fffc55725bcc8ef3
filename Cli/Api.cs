using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hive.Cli;

/// <summary>The Controller's REST API as the CLI uses it. Failures become <see cref="CliException"/> with the API's own message.</summary>
internal sealed class ApiClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _baseUri;

    public ApiClient(string baseUrl, string? apiKey)
    {
        if (!Uri.TryCreate(baseUrl.TrimEnd('/') + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliException($"invalid API URL '{baseUrl}'", 2);
        }

        _baseUri = uri;
        _http = new HttpClient { BaseAddress = uri, Timeout = Timeout.InfiniteTimeSpan };
        if (!string.IsNullOrEmpty(apiKey))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }
    }

    public Task<JsonNode> GetAsync(string path, CancellationToken ct) => SendJsonAsync(HttpMethod.Get, path, null, ct);

    public Task<JsonNode> PostAsync(string path, object body, CancellationToken ct) => SendJsonAsync(HttpMethod.Post, path, body, ct);

    public Task<JsonNode> PutAsync(string path, object body, CancellationToken ct) => SendJsonAsync(HttpMethod.Put, path, body, ct);

    public Task<JsonNode> DeleteAsync(string path, CancellationToken ct) => SendJsonAsync(HttpMethod.Delete, path, null, ct);

    public async Task<JsonNode> UploadAsync(string path, Stream content, long? length, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, path) { Content = new StreamContent(content, 64 * 1024) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        request.Content.Headers.ContentLength = length;
        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        return await ReadJsonAsync(response, ct);
    }

    public async Task DownloadAsync(string path, Stream destination, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        using var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        await body.CopyToAsync(destination, 64 * 1024, ct);
    }

    /// <summary>A streamed GET (SSE, JSON lines): the response body, read as it arrives.</summary>
    public async Task<(HttpResponseMessage Response, Stream Body)> OpenStreamAsync(string path, string accept, string? lastEventId, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.ParseAdd(accept);
        if (lastEventId is not null)
        {
            request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        }

        var response = await SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        return (response, await response.Content.ReadAsStreamAsync(ct));
    }

    public void Dispose() => _http.Dispose();

    private async Task<JsonNode> SendJsonAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, options: CliJson.Options);
        }

        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        return await ReadJsonAsync(response, ct);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken ct)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, ct);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            throw new CliException($"Controller not reachable at {_baseUri} ({ex.Message}). Is `hive daemon` (or `make up`) running? Set --api-url or HIVEBOX_API_URL.");
        }

        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            string message;
            try
            {
                message = JsonNode.Parse(text)?["error"]?.GetValue<string>() ?? text;
            }
            catch (JsonException)
            {
                message = text.Length > 0 ? text : response.ReasonPhrase ?? "request failed";
            }

            var hint = response.StatusCode == HttpStatusCode.Unauthorized ? " (set --api-key or HIVEBOX_API_KEY)" : string.Empty;
            throw new CliException($"{message}{hint} [{(int)response.StatusCode}]");
        }
    }

    private static async Task<JsonNode> ReadJsonAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var text = await response.Content.ReadAsStringAsync(ct);
        return text.Length == 0 ? new JsonObject() : JsonNode.Parse(text) ?? new JsonObject();
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
