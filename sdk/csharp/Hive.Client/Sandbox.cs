using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hive.Client;

/// <summary>One sandbox: run commands, move files, watch its audit trail.</summary>
public sealed class Sandbox
{
    private readonly HiveClient _client;

    internal Sandbox(HiveClient client, JsonElement info)
    {
        _client = client;
        Info = Describe(info);
    }

    internal Sandbox(HiveClient client, string name)
    {
        _client = client;
        var path = "/api/v1/hiveboxes/" + Uri.EscapeDataString(name);
        Info = new SandboxInfo(name, string.Empty, string.Empty, string.Empty, string.Empty, path + "/proxy/8080/", path + "/mcp", null);
    }

    public string Name => Info.Id;

    /// <summary>The last known description (<see cref="RefreshAsync"/> fetches a new one).</summary>
    public SandboxInfo Info { get; private set; }

    /// <summary>Port 8080 inside the sandbox (the MCP server in the default image), through the Controller; needs the API key.</summary>
    public Uri Url => new(_client.BaseUrl, Info.Url.TrimStart('/'));

    /// <summary>The sandbox's MCP endpoint (Streamable HTTP).</summary>
    public Uri McpUrl => new(_client.BaseUrl, Info.McpUrl.TrimStart('/'));

    private string Path => $"api/v1/hiveboxes/{Uri.EscapeDataString(Info.Id)}";

    public async Task<SandboxInfo> RefreshAsync(CancellationToken cancellationToken = default) =>
        Info = Describe(await _client.SendJsonAsync(HttpMethod.Get, Path, null, cancellationToken).ConfigureAwait(false));

    /// <summary>Runs <c>/bin/sh -c command</c> and waits for it.</summary>
    public async Task<ExecResult> ExecAsync(string command, ExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        var r = await _client.SendJsonAsync(HttpMethod.Post, Path + "/exec", ExecBody(command, options, withStdin: true), cancellationToken).ConfigureAwait(false);
        return new ExecResult(
            r.GetProperty("exit_code").GetInt32(),
            r.GetProperty("stdout").GetString()!,
            r.GetProperty("stderr").GetString()!,
            r.GetProperty("duration_ms").GetInt64(),
            r.GetProperty("timed_out").GetBoolean(),
            r.GetProperty("oom_killed").GetBoolean(),
            r.TryGetProperty("signal", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt32() : null)
        {
            StdoutTruncated = r.TryGetProperty("stdout_truncated", out var so) && so.ValueKind == JsonValueKind.True,
            StderrTruncated = r.TryGetProperty("stderr_truncated", out var se) && se.ValueKind == JsonValueKind.True,
        };
    }

    /// <summary>Starts a command whose output streams as it is produced and whose stdin stays open. Cancelling (or disposing the stream) kills it.</summary>
    public async Task<ExecStream> ExecStreamAsync(string command, ExecOptions? options = null, CancellationToken cancellationToken = default)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Path + "/exec/stream") { Content = JsonContent.Create(ExecBody(command, options, withStdin: false)) };
        var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        return await ExecStream.StartAsync(response, (id, data, close, ct) => SendStdinAsync(id, data, close, ct), cancellationToken).ConfigureAwait(false);
    }

    public async Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default)
    {
        using var response = await GetFileAsync(path, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<string> ReadFileTextAsync(string path, CancellationToken cancellationToken = default) =>
        Encoding.UTF8.GetString(await ReadFileAsync(path, cancellationToken).ConfigureAwait(false));

    /// <summary>A file as a stream (any size, constant memory). Dispose it when done.</summary>
    public async Task<Stream> OpenReadAsync(string path, CancellationToken cancellationToken = default)
    {
        var response = await GetFileAsync(path, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes a file (parents created; it appears whole).</summary>
    public async Task<long> WriteFileAsync(string path, byte[] content, CancellationToken cancellationToken = default) =>
        (await PutFileAsync(path, new ByteArrayContent(content), cancellationToken).ConfigureAwait(false)).Size;

    public async Task<long> WriteFileAsync(string path, string text, CancellationToken cancellationToken = default) =>
        (await PutFileAsync(path, new ByteArrayContent(Encoding.UTF8.GetBytes(text)), cancellationToken).ConfigureAwait(false)).Size;

    /// <summary>Streams <paramref name="content"/> into a file (any size).</summary>
    public async Task<long> WriteFileAsync(string path, Stream content, CancellationToken cancellationToken = default) =>
        (await PutFileAsync(path, new StreamContent(content, 64 * 1024), cancellationToken).ConfigureAwait(false)).Size;

    /// <summary>
    /// Streams <paramref name="content"/> into a file (any size) and says where it went: the
    /// sandbox's own absolute path and the size written. With <paramref name="length"/> the upload
    /// is sent with its length instead of in chunks.
    /// </summary>
    public Task<WrittenFile> UploadFileAsync(string path, Stream content, long? length = null, CancellationToken cancellationToken = default)
    {
        var body = new StreamContent(content, 64 * 1024);
        body.Headers.ContentLength = length;
        return PutFileAsync(path, body, cancellationToken);
    }

    /// <summary>Recursive listing (symlinks not followed).</summary>
    public async Task<IReadOnlyList<FileEntry>> ListFilesAsync(string path = "/", CancellationToken cancellationToken = default)
    {
        var r = await _client.SendJsonAsync(HttpMethod.Get, $"{Path}/files/list?path={Uri.EscapeDataString(path)}", null, cancellationToken).ConfigureAwait(false);
        return [.. r.GetProperty("entries").EnumerateArray().Select(e => new FileEntry(
            e.GetProperty("name").GetString()!,
            e.GetProperty("path").GetString()!,
            e.GetProperty("entry_type").GetString()!,
            e.TryGetProperty("size", out var s) && s.ValueKind == JsonValueKind.Number ? s.GetInt64() : null))];
    }

    /// <summary>The audit trail: history, then (Follow, the default) live — resumed exactly after a dropped connection.</summary>
    public async IAsyncEnumerable<SandboxEvent> EventsAsync(EventsOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options ??= new EventsOptions();
        var query = new StringBuilder("?");
        if (options.Kinds is { Count: > 0 } kinds)
        {
            query.Append("kind=").Append(Uri.EscapeDataString(string.Join(',', kinds))).Append('&');
        }

        if (options.Decision is { } decision)
        {
            query.Append("decision=").Append(Uri.EscapeDataString(decision)).Append('&');
        }

        var last = options.Since;
        if (!options.Follow)
        {
            query.Append("follow=false&format=jsonl");
            if (last is { } since)
            {
                query.Append("&since=").Append(since);
            }

            using var request = new HttpRequestMessage(HttpMethod.Get, Path + "/events" + query);
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.Length > 0)
                {
                    yield return SandboxEvent.Parse(line);
                }
            }

            yield break;
        }

        var failures = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var stream = await OpenEventStreamAsync(query.ToString(), last, cancellationToken).ConfigureAwait(false);
            if (stream is not null)
            {
                failures = 0;
                using var reader = new StreamReader(stream);
                string? id = null;
                while (true)
                {
                    string? line;
                    try
                    {
                        line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                    }
                    catch (Exception ex) when (ex is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
                    {
                        break; // dropped: reconnect below, from the last event delivered
                    }

                    if (line is null)
                    {
                        break;
                    }

                    if (line.StartsWith("id: ", StringComparison.Ordinal))
                    {
                        id = line[4..];
                    }
                    else if (line.StartsWith("data: ", StringComparison.Ordinal))
                    {
                        var e = SandboxEvent.Parse(line[6..]);
                        last = id is not null && long.TryParse(id, out var seq) ? seq : e.Seq;
                        yield return e;
                    }
                }
            }
            else
            {
                failures++;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 200 << Math.Min(failures, 5))), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Destroys the sandbox: container, mounts, network — everything but its workspace files and event log.</summary>
    public async Task DestroyAsync(CancellationToken cancellationToken = default) =>
        await _client.SendJsonAsync(HttpMethod.Delete, Path, null, cancellationToken).ConfigureAwait(false);

    private async Task<Stream?> OpenEventStreamAsync(string query, long? last, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Path + "/events" + query.TrimEnd('&', '?'));
        request.Headers.Accept.ParseAdd("text/event-stream");
        if (last is { } seq)
        {
            request.Headers.TryAddWithoutValidation("Last-Event-ID", seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        try
        {
            var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            return await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HiveApiException ex) when (ex.Status is 0 or >= 500)
        {
            return null; // the Controller is restarting or unreachable: try again
        }
    }

    private async Task<HttpResponseMessage> GetFileAsync(string path, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{Path}/files?path={Uri.EscapeDataString(path)}");
        return await _client.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
    }

    private async Task<WrittenFile> PutFileAsync(string path, HttpContent content, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"{Path}/files?path={Uri.EscapeDataString(path)}") { Content = content };
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false));
        return new WrittenFile(doc.RootElement.GetProperty("path").GetString()!, doc.RootElement.GetProperty("size").GetInt64());
    }

    private async Task SendStdinAsync(string id, ReadOnlyMemory<byte> data, bool close, CancellationToken cancellationToken)
    {
        var content = new ReadOnlyMemoryContent(data);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{Path}/exec/{id}/stdin{(close ? "?close=true" : string.Empty)}") { Content = content };
        using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken).ConfigureAwait(false);
    }

    private static JsonObject ExecBody(string command, ExecOptions? options, bool withStdin)
    {
        var body = new JsonObject { ["command"] = command };
        if (options?.Cwd is { } cwd)
        {
            body["cwd"] = cwd;
        }

        if (options?.Env is { } env)
        {
            body["env"] = new JsonObject(env.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));
        }

        if (options?.Timeout is { } timeout)
        {
            body["timeout"] = timeout.TotalSeconds;
        }

        if (withStdin && options?.Stdin is { } stdin)
        {
            body["stdin"] = stdin;
        }

        return body;
    }

    private static SandboxInfo Describe(JsonElement info) =>
        new(
            info.GetProperty("id").GetString()!,
            info.GetProperty("status").GetString()!,
            info.GetProperty("image").GetString()!,
            info.GetProperty("created_at").GetString()!,
            info.GetProperty("expires_at").GetString()!,
            info.GetProperty("url").GetString()!,
            info.GetProperty("mcp_url").GetString()!,
            info.TryGetProperty("error", out var e) ? e.GetString() : null)
        { Raw = info.Clone() };
}
