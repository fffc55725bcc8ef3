using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Hive.Testing;

/// <summary>
/// A real hive-controller process on 127.0.0.1 with a port of its own choosing, a private data dir,
/// the built Sbxd and agent bundle, and the cached base image.
/// </summary>
public sealed partial class ControllerProcess : IAsyncDisposable
{
    private readonly List<string> _log = [];
    private Process? _process;

    private ControllerProcess(string dataDir, string? apiKey, IReadOnlyList<string> extraArgs)
    {
        DataDir = dataDir;
        ApiKey = apiKey;
        ExtraArgs = extraArgs;
    }

    public string DataDir { get; }

    public string? ApiKey { get; }

    public IReadOnlyList<string> ExtraArgs { get; }

    public int Pid => _process?.Id ?? 0;

    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1:0");

    public HttpClient Http { get; private set; } = new();

    public string Log
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log.TakeLast(60));
            }
        }
    }

    public static async Task<ControllerProcess> StartAsync(string? dataDir = null, string? apiKey = null, params string[] extraArgs)
    {
        dataDir ??= Directory.CreateTempSubdirectory("hive-it-").FullName;
        var controller = new ControllerProcess(dataDir, apiKey, extraArgs);
        await controller.StartProcessAsync();
        return controller;
    }

    public string StateDir(string name) => Path.Combine(DataDir, "sandboxes", name);

    public async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo(Paths.Controller)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in (string[])["--port", "0", "--data-dir", DataDir, "--image-dir", Paths.ImageDir, "--sbxd", Paths.Sbxd, "--sbxfuse", Paths.SbxFuse, "--sbxproxy", Paths.SbxProxy, "--agent-bundle", Paths.AgentBundle, .. ExtraArgs])
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("HIVEBOX_API_KEY");
        if (ApiKey is not null)
        {
            start.ArgumentList.Add("--api-key");
            start.ArgumentList.Add(ApiKey);
            start.ArgumentList.Add("--host");
            start.ArgumentList.Add("127.0.0.1");
        }

        var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        _process = new Process { StartInfo = start, EnableRaisingEvents = true };
        void OnLine(object? sender, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                return;
            }

            lock (_log)
            {
                _log.Add(e.Data);
            }

            if (ListeningLine().Match(e.Data) is { Success: true } m)
            {
                port.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        _process.OutputDataReceived += OnLine;
        _process.ErrorDataReceived += OnLine;
        _process.Exited += (_, _) => port.TrySetException(new InvalidOperationException("controller exited early:\n" + Log));
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var p = await port.Task.WaitAsync(TimeSpan.FromSeconds(60));
        BaseAddress = new Uri($"http://127.0.0.1:{p}");
        Http.Dispose();
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(5) };
        if (ApiKey is not null)
        {
            Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
        }
    }

    /// <summary>SIGKILL, as a crash would: no shutdown code runs.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
    }

    public async Task<JsonElement> CreateAsync(object body, int expectStatus = 201)
    {
        using var response = await Http.PostAsJsonAsync("/api/v1/hiveboxes", body);
        var json = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(expectStatus), json);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    public async Task<JsonElement> PatchAsync(string name, object body, int expectStatus = 200)
    {
        using var response = await Http.PatchAsJsonAsync($"/api/v1/hiveboxes/{name}", body);
        var json = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(expectStatus), json);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    public async Task<JsonElement> ExecAsync(string name, string command, double timeout = 0, int expectStatus = 200)
    {
        using var response = await Http.PostAsJsonAsync($"/api/v1/hiveboxes/{name}/exec", new { command, timeout });
        var json = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(expectStatus), json);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    /// <summary>A sandbox's event history (follow=false, JSON lines), optionally filtered, from after <paramref name="since"/>.</summary>
    public async Task<List<JsonElement>> EventsAsync(string name, string? kind = null, string? decision = null, ulong since = 0)
    {
        var query = $"/api/v1/hiveboxes/{name}/events?follow=false&format=jsonl&since={since}"
            + (kind is null ? string.Empty : "&kind=" + Uri.EscapeDataString(kind))
            + (decision is null ? string.Empty : "&decision=" + Uri.EscapeDataString(decision));
        using var response = await Http.GetAsync(query);
        var text = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(200), text);
        return [.. text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone())];
    }

    /// <summary>Polls until <paramref name="done"/> holds for the sandbox's events (they become durable a few ms after the operation).</summary>
    public async Task<List<JsonElement>> WaitForEventsAsync(string name, Func<List<JsonElement>, bool> done, string? kind = null, string? decision = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            var events = await EventsAsync(name, kind, decision);
            if (done(events) || DateTime.UtcNow > deadline)
            {
                return events;
            }

            await Task.Delay(50);
        }
    }

    public async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }

        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonElement json;
        try
        {
            json = JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            json = JsonDocument.Parse(JsonSerializer.Serialize(new { raw = text })).RootElement.Clone();
        }

        return ((int)response.StatusCode, json);
    }

    public async Task DestroyAsync(string name)
    {
        using var response = await Http.DeleteAsync($"/api/v1/hiveboxes/{name}");
        Assert.That((int)response.StatusCode, Is.EqualTo(200), await response.Content.ReadAsStringAsync());
    }

    /// <summary>Destroys every sandbox it knows (API first, then Sbxd's own teardown), stops, removes the data dir.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            try
            {
                var list = await Http.GetFromJsonAsync<JsonElement>("/api/v1/hiveboxes");
                foreach (var sandbox in list.GetProperty("sandboxes").EnumerateArray())
                {
                    using var _ = await Http.DeleteAsync($"/api/v1/hiveboxes/{sandbox.GetProperty("id").GetString()}");
                }
            }
            catch (HttpRequestException)
            {
            }

            _process.Kill();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }

        var sandboxes = Path.Combine(DataDir, "sandboxes");
        if (Directory.Exists(sandboxes))
        {
            foreach (var dir in Directory.EnumerateDirectories(sandboxes))
            {
                await Host.RunAsync(Paths.Sbxd, "--state-dir", dir, "--destroy");
            }
        }

        Http.Dispose();
        _process?.Dispose();
        // Never recurse into a directory that still has something mounted under it.
        if (!(await File.ReadAllTextAsync("/proc/self/mountinfo")).Contains(DataDir, StringComparison.Ordinal))
        {
            try
            {
                Directory.Delete(DataDir, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // ArgumentException: a tree deeper than PATH_MAX (a test's own attempt); left for the test to remove.
            }
        }
    }

    [GeneratedRegex(@"listening on http://[^:]+:(\d+)")]
    private static partial Regex ListeningLine();
}
