using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Hive.Client;

/// <summary>Where the Controller is. Defaults: HIVE_URL, then HIVEBOX_API_URL, then http://localhost:7070; key from HIVEBOX_API_KEY.</summary>
public sealed record HiveClientOptions
{
    public string? Url { get; init; }

    public string? ApiKey { get; init; }
}

/// <summary>A connection to a Hive Controller. Thread-safe; dispose when done.</summary>
public sealed class HiveClient : IDisposable
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    private readonly HttpClient _http;

    public HiveClient(HiveClientOptions? options = null)
    {
        var url = options?.Url ?? Environment.GetEnvironmentVariable("HIVE_URL") ?? Environment.GetEnvironmentVariable("HIVEBOX_API_URL") ?? "http://localhost:7070";
        BaseUrl = new Uri(url.TrimEnd('/') + "/");
        _http = new HttpClient { BaseAddress = BaseUrl, Timeout = Timeout.InfiniteTimeSpan };
        var key = options?.ApiKey ?? Environment.GetEnvironmentVariable("HIVEBOX_API_KEY");
        if (!string.IsNullOrEmpty(key))
        {
            _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
    }

    public Uri BaseUrl { get; }

    /// <summary>The sandbox called <paramref name="name"/>, created with <paramref name="config"/> if missing. If it exists with a different configuration, a <see cref="HivePolicyException"/> says what differs.</summary>
    public async Task<Sandbox> GetOrCreateSandboxAsync(string name, SandboxConfig? config = null, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToNode(config ?? new SandboxConfig(), Json)!.AsObject();
        body["name"] = name;
        return new Sandbox(this, await SendJsonAsync(HttpMethod.Put, $"api/v1/hiveboxes/{Uri.EscapeDataString(name)}", body, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>Creates a sandbox (a random name when <paramref name="name"/> is null); a <see cref="HivePolicyException"/> if the name is taken.</summary>
    public async Task<Sandbox> CreateSandboxAsync(string? name = null, SandboxConfig? config = null, CancellationToken cancellationToken = default)
    {
        var body = JsonSerializer.SerializeToNode(config ?? new SandboxConfig(), Json)!.AsObject();
        if (name is not null)
        {
            body["name"] = name;
        }

        return new Sandbox(this, await SendJsonAsync(HttpMethod.Post, "api/v1/hiveboxes", body, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>An existing sandbox; <see cref="HiveNotFoundException"/> if there is none.</summary>
    public async Task<Sandbox> GetSandboxAsync(string name, CancellationToken cancellationToken = default) =>
        new(this, await SendJsonAsync(HttpMethod.Get, $"api/v1/hiveboxes/{Uri.EscapeDataString(name)}", null, cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// The sandbox called <paramref name="name"/> without asking the Controller (no request is
    /// made): calls on it answer <see cref="HiveNotFoundException"/> if there is none, and its
    /// <see cref="Sandbox.Info"/> holds only the name and URLs until <see cref="Sandbox.RefreshAsync"/>.
    /// Also reaches a destroyed sandbox's events, which stay readable until retention removes them.
    /// </summary>
    public Sandbox SandboxNamed(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new Sandbox(this, name);
    }

    public async Task<IReadOnlyList<Sandbox>> ListSandboxesAsync(CancellationToken cancellationToken = default)
    {
        var list = await SendJsonAsync(HttpMethod.Get, "api/v1/hiveboxes", null, cancellationToken).ConfigureAwait(false);
        return [.. list.GetProperty("sandboxes").EnumerateArray().Select(s => new Sandbox(this, s.Clone()))];
    }

    /// <summary>
    /// Stores a secret for egress <c>inject</c> rules (<c>${secret:NAME}</c>), bound to the hosts it may
    /// be sent to; TLS only unless <paramref name="allowHttp"/>. A null <paramref name="value"/> keeps the
    /// value of an existing secret and replaces only its hosts.
    /// </summary>
    public async Task<SecretInfo> SetSecretAsync(string name, string? value, IReadOnlyList<string> hosts, bool allowHttp = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(hosts);
        var body = new Dictionary<string, object?> { ["hosts"] = hosts, ["allow_http"] = allowHttp };
        if (value is not null)
        {
            body["value"] = value;
        }

        var stored = await SendJsonAsync(HttpMethod.Put, $"api/v1/secrets/{Uri.EscapeDataString(name)}", body, cancellationToken).ConfigureAwait(false);
        return stored.Deserialize<SecretInfo>(Json)!;
    }

    /// <summary>Every secret's name and hosts (never values).</summary>
    public async Task<IReadOnlyList<SecretInfo>> ListSecretsAsync(CancellationToken cancellationToken = default)
    {
        var list = await SendJsonAsync(HttpMethod.Get, "api/v1/secrets", null, cancellationToken).ConfigureAwait(false);
        return list.GetProperty("secrets").Deserialize<List<SecretInfo>>(Json)!;
    }

    public async Task DeleteSecretAsync(string name, CancellationToken cancellationToken = default) =>
        await SendJsonAsync(HttpMethod.Delete, $"api/v1/secrets/{Uri.EscapeDataString(name)}", null, cancellationToken).ConfigureAwait(false);

    public void Dispose() => _http.Dispose();

    internal async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new HiveApiException(0, $"cannot reach the Hive Controller at {BaseUrl}: {ex.Message}", ex);
        }

        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw await HiveApiException.FromAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }

        return response;
    }

    internal async Task<JsonElement> SendJsonAsync(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, options: Json);
        }

        using var response = await SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        using var doc = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
        return doc.RootElement.Clone();
    }
}
