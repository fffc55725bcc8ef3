using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// MCP end to end with the official clients: the TypeScript SDK over Streamable HTTP and over
/// <c>hive mcp</c> (stdio), inspector-cli; and sandbox.url reaching servers inside the sandbox.
/// </summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class McpTests : SharedControllerFixture
{
    private const string Key = "mcp-test-key-0123";
    private static readonly string Dir = Path.Combine(Paths.Repo, "tests", "interop", "mcp");
    private string _name = null!;

    protected override string? ApiKey => Key;

    [OneTimeSetUp]
    public async Task SetUpAsync()
    {
        if (!Directory.Exists(Path.Combine(Dir, "node_modules", "@modelcontextprotocol", "sdk")) || !Directory.Exists(Path.Combine(Dir, "node_modules", "@modelcontextprotocol", "inspector-cli")))
        {
            var install = await RunAsync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], Dir, TimeSpan.FromMinutes(4));
            Assert.That(install.Code, Is.Zero, "npm install failed:\n" + install.Output);
        }

        _name = Names.Unique("mcp");
        await Controller.CreateAsync(new
        {
            name = _name,
            fs = new[] { new { mount = "/workspace", acls = new object[] { new { path = "/workspace/**", access = "rw" }, new { path = "/workspace/secrets/**", access = "deny" } } } },
        });
        var backing = Directory.GetDirectories(Path.Combine(Controller.DataDir, "workspaces", _name)).Single();
        Directory.CreateDirectory(Path.Combine(backing, "secrets"));
        await File.WriteAllTextAsync(Path.Combine(backing, "secrets", "token"), "s3cr3t");
    }

    [OneTimeTearDown]
    public async Task TearDownSandboxAsync()
    {
        if (_name is not null)
        {
            await Controller.DestroyAsync(_name);
        }
    }

    private string McpUrl => $"{Controller.BaseAddress.ToString().TrimEnd('/')}/api/v1/hiveboxes/{_name}/mcp";

    [Test]
    public async Task The_typescript_sdk_over_streamable_http_uses_every_tool()
    {
        var before = await Controller.EventsAsync(_name, kind: "mcp.call");
        var run = await RunAsync("node", ["check-tools.mjs", "--http", McpUrl, "--token", Key], Dir, TimeSpan.FromMinutes(3));
        Assert.That(run.Code, Is.Zero, run.Output);
        Assert.That(run.Output, Does.Match(@"ok \d{3} checks"));

        // Every tool call is on record, before (mcp.started) and with its outcome (mcp.call).
        // check-tools.mjs makes 53 tool calls.
        var calls = (await Controller.WaitForEventsAsync(_name, e => e.Count >= before.Count + 53, kind: "mcp.call")).Skip(before.Count).ToList();
        var started = await Controller.EventsAsync(_name, kind: "mcp.started");
        Assert.That(calls, Has.Count.EqualTo(53));
        Assert.That(started.Count, Is.GreaterThanOrEqualTo(calls.Count + before.Count));
        Assert.That(calls.Select(c => c.GetProperty("tool").GetString()).Distinct().Count(), Is.EqualTo(14), "all 14 tools were called");
        var denied = calls.Single(c => c.GetProperty("tool").GetString() == "read_file" && c.GetProperty("arguments").GetString()!.Contains("/workspace/secrets/token", StringComparison.Ordinal));
        Assert.That(denied.GetProperty("error").GetString(), Does.Contain("permission denied"));
        Assert.That(calls.First(c => c.GetProperty("tool").GetString() == "write_file").TryGetProperty("error", out _), Is.False, "a successful call has no error");
        Assert.That(calls.All(c => c.GetProperty("session").GetString()!.Length > 0), "Streamable HTTP sessions (Mcp-Session-Id)");

        // The denial also shows in the file-system audit, decided by SbxFuse.
        var fsDenials = await Controller.EventsAsync(_name, kind: "fs", decision: "deny");
        Assert.That(fsDenials.Any(e => e.GetProperty("path").GetString()!.StartsWith("/workspace/secrets", StringComparison.Ordinal)));
    }

    [Test]
    public async Task The_typescript_sdk_over_hive_mcp_stdio_uses_every_tool()
    {
        var run = await RunAsync(
            "node",
            ["check-tools.mjs", "--stdio", Paths.Cli, "mcp", "--sandbox", _name, "--api-url", Controller.BaseAddress.ToString().TrimEnd('/')],
            Dir,
            TimeSpan.FromMinutes(3),
            new Dictionary<string, string> { ["HIVEBOX_API_KEY"] = Key });
        Assert.That(run.Code, Is.Zero, run.Output);
        Assert.That(run.Output, Does.Match(@"ok \d{3} checks"));

        // Without the key, hive mcp says why instead of hanging.
        var refused = await RunAsync(Paths.Cli, ["mcp", "--sandbox", _name, "--api-url", Controller.BaseAddress.ToString().TrimEnd('/')], Dir, TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["HIVEBOX_API_KEY"] = string.Empty });
        Assert.That(refused.Code, Is.Not.Zero);
        Assert.That(refused.Output, Does.Contain("401").Or.Contain("nauthorized").Or.Contain("API key"));
    }

    [TestCase("mcp-config-http")]
    [TestCase("mcp-config-stdio")]
    public async Task The_readme_client_configurations_work_as_written(string marker)
    {
        // The snippet under <!-- marker --> in README.md, with only host, sandbox and key filled in.
        var readme = await File.ReadAllTextAsync(Path.Combine(Paths.Repo, "README.md"));
        var start = readme.IndexOf("```json", readme.IndexOf($"<!-- {marker} -->", StringComparison.Ordinal), StringComparison.Ordinal) + 7;
        var snippet = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)]
            .Replace("http://localhost:7070", Controller.BaseAddress.ToString().TrimEnd('/'), StringComparison.Ordinal)
            .Replace("my-sandbox", _name, StringComparison.Ordinal)
            .Replace("your-secret-key", Key, StringComparison.Ordinal);
        var config = Path.Combine(Path.GetTempPath(), $"hive-mcp-{marker}-{Environment.ProcessId}.json");
        var bin = Directory.CreateTempSubdirectory("hive-path-").FullName;
        try
        {
            await File.WriteAllTextAsync(config, snippet);

            // "hivebox" on the PATH, as `make up` installs it.
            File.CreateSymbolicLink(Path.Combine(bin, "hivebox"), Paths.Cli);
            var run = await RunAsync("node", ["check-config.mjs", config], Dir, TimeSpan.FromMinutes(2), new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH") });
            Assert.That(run.Code, Is.Zero, run.Output + "\n" + snippet);
        }
        finally
        {
            File.Delete(config);
            Directory.Delete(bin, recursive: true);
        }
    }

    [Test]
    public async Task Inspector_cli_lists_and_calls_tools()
    {
        // inspector-cli 1.0.3 finds its own package.json relative to the working directory.
        var cliDir = Path.Combine(Dir, "node_modules", "@modelcontextprotocol", "inspector-cli", "build");
        string[] common = ["cli.js", "--cli", McpUrl, "--transport", "http", "--header", $"Authorization: Bearer {Key}"];
        var list = await RunAsync("node", [.. common, "--method", "tools/list"], cliDir, TimeSpan.FromMinutes(2));
        Assert.That(list.Code, Is.Zero, list.Output);
        using var tools = JsonDocument.Parse(list.Stdout);
        Assert.That(tools.RootElement.GetProperty("tools").GetArrayLength(), Is.EqualTo(14));

        var call = await RunAsync("node", [.. common, "--method", "tools/call", "--tool-name", "exec", "--tool-arg", "command=echo from-inspector"], cliDir, TimeSpan.FromMinutes(2));
        Assert.That(call.Code, Is.Zero, call.Output);
        using var result = JsonDocument.Parse(call.Stdout);
        Assert.That(result.RootElement.GetProperty("structuredContent").GetProperty("stdout").GetString(), Is.EqualTo("from-inspector\n"));
    }

    [Test]
    public async Task The_endpoint_wants_the_key_and_an_existing_sandbox()
    {
        using var anonymous = new HttpClient { BaseAddress = Controller.BaseAddress };
        using var initialize = Initialize();
        using var noKey = await anonymous.SendAsync(initialize);
        Assert.That((int)noKey.StatusCode, Is.EqualTo(401));

        using var missing = Initialize($"/api/v1/hiveboxes/no-such-sandbox/mcp");
        using var notFound = await Controller.Http.SendAsync(missing);
        Assert.That((int)notFound.StatusCode, Is.EqualTo(404));

        using var put = new HttpRequestMessage(HttpMethod.Put, $"/api/v1/hiveboxes/{_name}/mcp");
        using var wrongMethod = await Controller.Http.SendAsync(put);
        Assert.That((int)wrongMethod.StatusCode, Is.EqualTo(405));
    }

    [Test]
    public async Task Sandbox_url_reaches_servers_inside_the_sandbox_http_sse_and_websocket()
    {
        var (_, sandbox) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{_name}");
        var url = sandbox.GetProperty("url").GetString()!;
        Assert.That(url, Is.EqualTo($"/api/v1/hiveboxes/{_name}/proxy/8080/"));
        Assert.That(sandbox.GetProperty("mcp_url").GetString(), Is.EqualTo($"/api/v1/hiveboxes/{_name}/mcp"));

        // Port 8080 of the default image is the MCP server itself.
        using (var initialize = Initialize(url + "mcp"))
        using (var response = await Controller.Http.SendAsync(initialize))
        {
            Assert.That((int)response.StatusCode, Is.EqualTo(200));
            Assert.That(await response.Content.ReadAsStringAsync(), Does.Contain("hive-sandbox"));
        }

        // Any port works the same way: start servers inside the sandbox (network mode none).
        foreach (var script in new[] { "sse_server.py", "ws_echo.py" })
        {
            using var upload = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "Resources", script)));
            using var put = await Controller.Http.PutAsync($"/api/v1/hiveboxes/{_name}/files?path=/opt/{script}", upload);
            Assert.That(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        }

        await Controller.ExecAsync(_name, "(setsid python3 /opt/sse_server.py 9000 >/dev/null 2>&1 &); (setsid python3 /opt/ws_echo.py 9100 >/dev/null 2>&1 &); for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/9000) 2>/dev/null && (echo > /dev/tcp/127.0.0.1/9100) 2>/dev/null && break; sleep 0.1; done", timeout: 30);
        var plain = await Controller.Http.GetStringAsync($"/api/v1/hiveboxes/{_name}/proxy/9000/some/path?x=1");
        Assert.That(plain, Is.EqualTo("hello from port 9000 path /some/path?x=1 auth=None"), "the path and query arrive; the API key does not");
        using (var echo = await Controller.Http.PostAsync($"/api/v1/hiveboxes/{_name}/proxy/9000/", new StringContent("abc")))
        {
            Assert.That((int)echo.StatusCode, Is.EqualTo(201));
            Assert.That(await echo.Content.ReadAsStringAsync(), Is.EqualTo("cba"));
        }

        // SSE streams through: the first event arrives while the server still holds the rest back.
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"/api/v1/hiveboxes/{_name}/proxy/9000/events"))
        using (var response = await Controller.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            string? first = null;
            while (await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) is { } line)
            {
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    first = line;
                    break;
                }
            }

            Assert.That(first, Is.EqualTo("data: tick 0"), "streamed, not buffered until the end");
            await Controller.ExecAsync(_name, "touch /tmp/go");
            var rest = await reader.ReadToEndAsync();
            Assert.That(rest, Does.Contain("data: tick 2"));
        }

        // WebSocket, through the same tunnel.
        using (var socket = new ClientWebSocket())
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + Key);
            var wsUri = new Uri($"ws://{Controller.BaseAddress.Authority}/api/v1/hiveboxes/{_name}/proxy/9100/");
            await socket.ConnectAsync(wsUri, CancellationToken.None);
            await socket.SendAsync(Encoding.UTF8.GetBytes("ping"), WebSocketMessageType.Text, true, CancellationToken.None);
            var buffer = new byte[256];
            var received = await socket.ReceiveAsync(buffer, CancellationToken.None);
            Assert.That(Encoding.UTF8.GetString(buffer, 0, received.Count), Is.EqualTo("echo: ping"));
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        }

        // Clear errors; the key is required.
        var (closed, error) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{_name}/proxy/9999/");
        Assert.That(closed, Is.EqualTo(502));
        Assert.That(error.GetProperty("error").GetString(), Does.Contain("nothing is listening on port 9999"));
        var (badPort, _) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{_name}/proxy/70000/");
        Assert.That(badPort, Is.EqualTo(400));
        using var anonymous = new HttpClient { BaseAddress = Controller.BaseAddress };
        using var noKey = await anonymous.GetAsync($"/api/v1/hiveboxes/{_name}/proxy/9000/");
        Assert.That((int)noKey.StatusCode, Is.EqualTo(401));

        // Ingress is audited.
        var ingress = await Controller.WaitForEventsAsync(_name, e => e.Any(x => x.GetProperty("kind").GetString() == "ingress.websocket"), kind: "ingress");
        Assert.That(ingress.Any(e => e.GetProperty("port").GetInt32() == 9000 && e.GetProperty("path").GetString() == "/some/path" && e.GetProperty("status").GetInt32() == 200));
        Assert.That(ingress.Any(e => e.GetProperty("port").GetInt32() == 9999 && e.GetProperty("status").GetInt32() == 502));
        Assert.That(ingress.Single(e => e.GetProperty("kind").GetString() == "ingress.websocket").GetProperty("bytes_in").GetInt64(), Is.EqualTo(4));
    }

    private HttpRequestMessage Initialize(string? path = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path ?? $"/api/v1/hiveboxes/{_name}/mcp")
        {
            Content = JsonContent.Create(new { jsonrpc = "2.0", id = 1, method = "initialize", @params = new { protocolVersion = "2025-06-18", capabilities = new { }, clientInfo = new { name = "t", version = "1" } } }),
        };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        return request;
    }

    private static Task<(int Code, string Stdout, string Output)> RunAsync(string file, string[] args, string cwd, TimeSpan timeout, Dictionary<string, string>? env = null) =>
        Host.RunWithEnvAsync(file, args, cwd, timeout, env ?? []);
}
