using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hive.Client;

namespace Hive.Integration.Tests;

/// <summary>
/// Both SDKs against a real Controller and real sandboxes: the C# Hive.Client here, the
/// TypeScript package through its own node:test suite, and the stateful-agent example.
/// </summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class SdkTests : SharedControllerFixture
{
    private const string Key = "sdk-test-key-0123";

    protected override string? ApiKey => Key;

    private HiveClient Client() => new(new HiveClientOptions { Url = Controller.BaseAddress.ToString(), ApiKey = Key });

    [Test]
    public async Task Csharp_secrets_are_bound_to_hosts_and_never_come_back()
    {
        using var hive = Client();
        var name = "cs-sdk-" + Guid.NewGuid().ToString("N")[..8];
        var value = "sk-sdk-" + Guid.NewGuid().ToString("N");
        try
        {
            var stored = await hive.SetSecretAsync(name, value, ["api.example.test", "*.openai.test"]);
            Assert.That((stored.Name, stored.AllowHttp, stored.Error), Is.EqualTo((name, false, (string?)null)));
            Assert.That(stored.Hosts, Is.EqualTo(new[] { "api.example.test", "*.openai.test" }));
            var rebound = await hive.SetSecretAsync(name, null, ["api.example.test"], allowHttp: true);
            Assert.That((rebound.Hosts.Single(), rebound.AllowHttp), Is.EqualTo(("api.example.test", true)));
            var listed = (await hive.ListSecretsAsync()).Single(s => s.Name == name);
            Assert.That(listed.Hosts, Is.EqualTo(new[] { "api.example.test" }));
            Assert.That(JsonSerializer.Serialize(await hive.ListSecretsAsync()), Does.Not.Contain(value));
            var bad = Assert.ThrowsAsync<HiveApiException>(() => hive.SetSecretAsync(name + "-x", value, []))!;
            Assert.That(bad.Status, Is.EqualTo(400));
            Assert.That(bad.Message, Does.Contain("hosts"));
        }
        finally
        {
            await hive.DeleteSecretAsync(name);
        }
    }

    [Test]
    public async Task Csharp_get_or_create_exec_streams_files_events_destroy_and_errors()
    {
        using var hive = Client();
        var name = Names.Unique("cs-sdk");
        var config = new SandboxConfig { Memory = "256m", Fs = [new WorkspaceConfig("/workspace") { Acls = [new AclRule("/workspace/**", "rw")] }] };
        var sandbox = await hive.GetOrCreateSandboxAsync(name, config);
        try
        {
            // Idempotent; a different config names the difference.
            var again = await hive.GetOrCreateSandboxAsync(name, config);
            Assert.That(again.Info.CreatedAt, Is.EqualTo(sandbox.Info.CreatedAt));
            var conflict = Assert.ThrowsAsync<HivePolicyException>(() => hive.GetOrCreateSandboxAsync(name, config with { Memory = "512m" }))!;
            Assert.That(conflict.Message, Does.Contain("memory"));
            Assert.That(sandbox.Url, Is.EqualTo(new Uri(Controller.BaseAddress, $"/api/v1/hiveboxes/{name}/proxy/8080/")));
            Assert.That(sandbox.McpUrl, Is.EqualTo(new Uri(Controller.BaseAddress, $"/api/v1/hiveboxes/{name}/mcp")));
            Assert.That((await hive.ListSandboxesAsync()).Select(s => s.Name), Does.Contain(name));

            // Exec.
            var r = await sandbox.ExecAsync("python3 -c 'print(1+1)'");
            Assert.That((r.ExitCode, r.Stdout, r.Stderr), Is.EqualTo((0, "2\n", string.Empty)));
            var failed = await sandbox.ExecAsync("echo $X; exit 3", new ExecOptions { Env = new Dictionary<string, string> { ["X"] = "env" }, Cwd = "/tmp" });
            Assert.That((failed.ExitCode, failed.Stdout), Is.EqualTo((3, "env\n")));
            Assert.That((await sandbox.ExecAsync("sleep 5", new ExecOptions { Timeout = TimeSpan.FromMilliseconds(500) })).TimedOut, Is.True);

            // Streamed exec with stdin.
            await using (var upper = await sandbox.ExecStreamAsync("tr a-z A-Z"))
            {
                await upper.WriteStdinAsync("hello ");
                await upper.CloseStdinAsync(Encoding.UTF8.GetBytes("world\n"));
                var text = new StringBuilder();
                await foreach (var chunk in upper.Stdout)
                {
                    text.Append(Encoding.UTF8.GetString(chunk.Span));
                }

                Assert.That(text.ToString(), Is.EqualTo("HELLO WORLD\n"));
                Assert.That((await upper.Exit).ExitCode, Is.Zero);
            }

            // The first line arrives while the command is still blocked: output streams, it is not buffered.
            await using (var ticks = await sandbox.ExecStreamAsync("echo tick 1; while [ ! -e /tmp/go-cs ]; do sleep 0.05; done; echo tick 2; exit 4"))
            {
                await using var output = ticks.Stdout.GetAsyncEnumerator();
                Assert.That(await output.MoveNextAsync(), Is.True);
                Assert.That(Encoding.UTF8.GetString(output.Current.Span), Is.EqualTo("tick 1\n"));
                await sandbox.ExecAsync("touch /tmp/go-cs");
                var rest = new StringBuilder();
                while (await output.MoveNextAsync())
                {
                    rest.Append(Encoding.UTF8.GetString(output.Current.Span));
                }

                Assert.That(rest.ToString(), Is.EqualTo("tick 2\n"));
                Assert.That((await ticks.Exit).ExitCode, Is.EqualTo(4));
            }

            // Binary round trip, bytes and streams.
            var bytes = RandomNumberGenerator.GetBytes(1024 * 1024 + 3);
            Assert.That(await sandbox.WriteFileAsync("/workspace/blob.bin", bytes), Is.EqualTo(bytes.Length));
            Assert.That(await sandbox.ReadFileAsync("/workspace/blob.bin"), Is.EqualTo(bytes));
            await sandbox.WriteFileAsync("/workspace/streamed.bin", new MemoryStream(bytes));
            await using (var read = await sandbox.OpenReadAsync("/workspace/streamed.bin"))
            using (var copy = new MemoryStream())
            {
                await read.CopyToAsync(copy);
                Assert.That(copy.ToArray(), Is.EqualTo(bytes));
            }

            await sandbox.WriteFileAsync("/workspace/note.txt", "héllo\n");
            Assert.That(await sandbox.ReadFileTextAsync("/workspace/note.txt"), Is.EqualTo("héllo\n"));
            Assert.That((await sandbox.ListFilesAsync("/workspace")).Any(e => e.Name == "blob.bin" && e.Size == bytes.Length));
            Assert.ThrowsAsync<HiveNotFoundException>(() => sandbox.ReadFileAsync("/workspace/missing"));

            // Events: history and a live stream that resumes exactly across a dropped connection.
            await using var relay = await Relay.StartAsync(Controller.BaseAddress);
            using var viaRelay = new HiveClient(new HiveClientOptions { Url = relay.Url, ApiKey = Key });
            var live = await viaRelay.GetSandboxAsync(name);
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            var seen = new List<SandboxEvent>();
            var cut = false;
            await foreach (var e in live.EventsAsync(new EventsOptions { Kinds = ["exec"] }, stop.Token))
            {
                seen.Add(e);
                if (e.Kind == "exec.finished" && e["command"] == "tr a-z A-Z" && !cut)
                {
                    cut = true;
                    relay.DropAll();
                    await sandbox.ExecAsync("echo after-the-drop");
                }

                if (e.Kind == "exec.finished" && e["command"] == "echo after-the-drop")
                {
                    break;
                }
            }

            var seqs = seen.Select(e => e.Seq).ToList();
            Assert.That(seqs, Is.Ordered.And.Unique, "nothing twice");
            var history = new List<long>();
            await foreach (var e in sandbox.EventsAsync(new EventsOptions { Kinds = ["exec"], Follow = false }))
            {
                history.Add(e.Seq);
            }

            Assert.That(seqs, Is.EqualTo(history.Where(s => s <= seqs[^1])), "nothing lost: the live view equals the history");
            Assert.That(seen.First().Kind, Is.EqualTo("exec.started"));
            Assert.That(seen.Single(e => e["command"] == "python3 -c 'print(1+1)'" && e.Kind == "exec.finished")["exit_code"], Is.EqualTo("0"));
        }
        finally
        {
            await sandbox.DestroyAsync();
        }

        Assert.ThrowsAsync<HiveNotFoundException>(() => hive.GetSandboxAsync(name));
        using var wrongKey = new HiveClient(new HiveClientOptions { Url = Controller.BaseAddress.ToString(), ApiKey = "wrong-key-123456" });
        Assert.That(Assert.ThrowsAsync<HiveAuthException>(() => wrongKey.ListSandboxesAsync())!.Status, Is.EqualTo(401));
        var bad = Assert.ThrowsAsync<HiveApiException>(() => hive.CreateSandboxAsync("Bad Name!"))!;
        Assert.That(bad.Status, Is.EqualTo(400));
        using var nowhere = new HiveClient(new HiveClientOptions { Url = "http://127.0.0.1:1" });
        Assert.That(Assert.ThrowsAsync<HiveApiException>(() => nowhere.ListSandboxesAsync())!.Status, Is.Zero);
    }

    [Test]
    public async Task Csharp_a_sandbox_by_name_uploads_with_length_and_says_when_output_was_cut()
    {
        using var hive = Client();
        var name = Names.Unique("cs-named");
        Assert.ThrowsAsync<HiveNotFoundException>(() => hive.SandboxNamed(name).ExecAsync("true"), "a name alone makes no request and finds nothing");
        await hive.CreateSandboxAsync(name, new SandboxConfig { Memory = "256m" });
        var byName = hive.SandboxNamed(name);
        try
        {
            Assert.That(byName.Url, Is.EqualTo(new Uri(Controller.BaseAddress, $"/api/v1/hiveboxes/{name}/proxy/8080/")));
            var payload = RandomNumberGenerator.GetBytes(100_003);
            var written = await byName.UploadFileAsync("/tmp/up.bin", new MemoryStream(payload), payload.Length);
            Assert.That(written, Is.EqualTo(new WrittenFile("/tmp/up.bin", payload.Length)));
            Assert.That(await byName.ReadFileAsync("/tmp/up.bin"), Is.EqualTo(payload));

            var cut = await byName.ExecAsync("head -c 1100000 /dev/zero | tr '\\0' a; echo err >&2");
            Assert.That((cut.ExitCode, cut.StdoutTruncated, cut.StderrTruncated, cut.Stderr), Is.EqualTo((0, true, false, "err\n")));
            var whole = await byName.ExecAsync("echo hi");
            Assert.That((whole.Stdout, whole.StdoutTruncated), Is.EqualTo(("hi\n", false)));
            Assert.That((await byName.RefreshAsync()).Status, Is.EqualTo("running"));
        }
        finally
        {
            await byName.DestroyAsync();
        }

        // A destroyed sandbox's history stays readable by its name.
        var kinds = new List<string>();
        await foreach (var e in hive.SandboxNamed(name).EventsAsync(new EventsOptions { Kinds = ["exec"], Follow = false }))
        {
            kinds.Add(e.Kind);
        }

        Assert.That(kinds, Does.Contain("exec.finished"));
    }

    [Test]
    public async Task Typescript_sdk_suite_passes_against_a_real_controller()
    {
        var dir = Path.Combine(Paths.Repo, "sdk", "typescript");
        await NpmAsync(dir, "install", "--no-audit", "--no-fund", "--loglevel=error");
        await NpmAsync(dir, "run", "build");
        var test = await Host.RunWithEnvAsync("npm", ["test"], dir, TimeSpan.FromMinutes(5), new() { ["HIVE_URL"] = Controller.BaseAddress.ToString(), ["HIVEBOX_API_KEY"] = Key });
        Assert.That(test.Code, Is.Zero, test.Output);
        Assert.That(test.Output, Does.Contain("ℹ pass 8").And.Contain("ℹ fail 0"));

        // npm pack produces a package that installs into another project and imports by name.
        var project = Directory.CreateTempSubdirectory("hive-npm-install-").FullName;
        try
        {
            var pack = await Host.RunWithEnvAsync("npm", ["pack", "--pack-destination", project], dir, TimeSpan.FromMinutes(2), []);
            Assert.That(pack.Code, Is.Zero, pack.Output);
            var tarball = Directory.GetFiles(project, "hive-*.tgz").Single();
            await File.WriteAllTextAsync(Path.Combine(project, "package.json"), """{"name": "uses-hive", "private": true, "type": "module"}""");
            await NpmAsync(project, "install", "--no-audit", "--no-fund", "--loglevel=error", tarball);
            await File.WriteAllTextAsync(Path.Combine(project, "check.mjs"), """
                import * as hive from "hive";
                const sandboxes = await hive.listSandboxes();
                console.log(typeof hive.getOrCreateSandbox, typeof hive.NotFoundError, Array.isArray(sandboxes));
                """);
            var run = await Host.RunWithEnvAsync("node", ["check.mjs"], project, TimeSpan.FromMinutes(1), new() { ["HIVE_URL"] = Controller.BaseAddress.ToString(), ["HIVEBOX_API_KEY"] = Key });
            Assert.That(run.Stdout.Trim(), Is.EqualTo("function function true"), run.Output);
            Assert.That(File.Exists(Path.Combine(project, "node_modules", "hive", "dist", "index.d.ts")), "the type declarations ship");
        }
        finally
        {
            Directory.Delete(project, recursive: true);
        }
    }

    [Test]
    public async Task The_stateful_agent_example_keeps_its_workspace_across_runs_and_prints_its_audit_trail()
    {
        var sdk = Path.Combine(Paths.Repo, "sdk", "typescript");
        await NpmAsync(sdk, "install", "--no-audit", "--no-fund", "--loglevel=error");
        await NpmAsync(sdk, "run", "build");
        var dir = Path.Combine(Paths.Repo, "examples", "stateful-agent");
        await NpmAsync(dir, "install", "--no-audit", "--no-fund", "--loglevel=error");
        var name = Names.Unique("example");
        var env = new Dictionary<string, string> { ["HIVE_URL"] = Controller.BaseAddress.ToString(), ["HIVEBOX_API_KEY"] = Key };
        var first = await Host.RunWithEnvAsync("npm", ["start", "--", name], dir, TimeSpan.FromMinutes(3), env);
        Assert.That(first.Code, Is.Zero, first.Output);
        Assert.That(first.Output, Does.Contain($"run 1 of \"{name}\": notes so far: run-1.md"));
        Assert.That(first.Output, Does.Contain("Permission denied"));
        Assert.That(first.Output, Does.Match(@"wrote /workspace/journal\.txt \(\d+ B, sha256 [0-9a-f]{12}…\)"));
        Assert.That(first.Output, Does.Contain("-> /workspace/notes/run-1.md"), "the note, written to a temporary name and renamed into place");
        Assert.That(first.Output, Does.Match(@"DENIED fs\.\w+ /workspace/secrets"));
        var second = await Host.RunWithEnvAsync("npm", ["start", "--", name], dir, TimeSpan.FromMinutes(3), env);
        Assert.That(second.Code, Is.Zero, second.Output);
        Assert.That(second.Output, Does.Contain($"run 2 of \"{name}\": notes so far: run-1.md run-2.md"), "the workspace outlived the destroyed sandbox");
    }

    [Test]
    public async Task Dotnet_pack_produces_an_installable_package()
    {
        var output = Directory.CreateTempSubdirectory("hive-pack-").FullName;
        try
        {
            var pack = await Host.RunWithEnvAsync("dotnet", ["pack", Path.Combine(Paths.Repo, "sdk", "csharp", "Hive.Client"), "-c", "Release", "-o", output, "--nologo"], Paths.Repo, TimeSpan.FromMinutes(4), []);
            Assert.That(pack.Code, Is.Zero, pack.Output);
            var package = Path.Combine(output, "Hive.Client.0.1.0.nupkg");
            using (var zip = System.IO.Compression.ZipFile.OpenRead(package))
            {
                var entries = zip.Entries.Select(e => e.FullName).ToList();
                Assert.That(entries, Does.Contain("lib/net10.0/Hive.Client.dll").And.Contain("lib/net10.0/Hive.Client.xml").And.Contain("README.md"));
            }

            // It installs into a new project from that folder and the program runs against the Controller.
            var app = Path.Combine(output, "app");
            Directory.CreateDirectory(app);
            await File.WriteAllTextAsync(Path.Combine(app, "app.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><RestoreSources>{output};$(RestoreSources)</RestoreSources></PropertyGroup>
                  <ItemGroup><PackageReference Include="Hive.Client" Version="0.1.0" /></ItemGroup>
                </Project>
                """);
            await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
                using var hive = new Hive.Client.HiveClient();
                Console.WriteLine((await hive.ListSandboxesAsync()).Count >= 0 ? "installed and working" : "?");
                """);
            var run = await Host.RunWithEnvAsync("dotnet", ["run", "-c", "Release", "--property:NuGetAudit=false"], app, TimeSpan.FromMinutes(4), new() { ["HIVE_URL"] = Controller.BaseAddress.ToString(), ["HIVEBOX_API_KEY"] = Key, ["NUGET_PACKAGES"] = Path.Combine(output, "nuget-cache") });
            Assert.That(run.Stdout.Trim(), Is.EqualTo("installed and working"), run.Output);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [Test]
    public async Task The_readme_examples_run_as_written()
    {
        var env = new Dictionary<string, string> { ["HIVE_URL"] = Controller.BaseAddress.ToString(), ["HIVEBOX_API_KEY"] = Key };
        var name = Names.Unique("readme");

        // TypeScript: the README's example, with only the sandbox name changed, run as a module where "hive" is installed.
        var sdk = Path.Combine(Paths.Repo, "sdk", "typescript");
        await NpmAsync(sdk, "install", "--no-audit", "--no-fund", "--loglevel=error");
        await NpmAsync(sdk, "run", "build");
        var example = Path.Combine(Paths.Repo, "examples", "stateful-agent");
        await NpmAsync(example, "install", "--no-audit", "--no-fund", "--loglevel=error");
        var script = Path.Combine(example, $"readme-{Environment.ProcessId}.mjs");
        await File.WriteAllTextAsync(script, Snippet(Path.Combine(sdk, "README.md")).Replace("my-sandbox", name + "-ts", StringComparison.Ordinal));
        try
        {
            var ts = await Host.RunWithEnvAsync("node", [script], example, TimeSpan.FromMinutes(2), env);
            Assert.That(ts.Code, Is.Zero, ts.Output);
            Assert.That(ts.Stdout, Does.StartWith("2\n").And.Contain("exec.started").And.Contain($"/api/v1/hiveboxes/{name}-ts/mcp"));
        }
        finally
        {
            File.Delete(script);
        }

        // C#: the README's example as a console program referencing the SDK project.
        var dir = Directory.CreateTempSubdirectory("hive-readme-cs-").FullName;
        try
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "readme.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable></PropertyGroup>
                  <ItemGroup><ProjectReference Include="{Path.Combine(Paths.Repo, "sdk", "csharp", "Hive.Client", "Hive.Client.csproj")}" /></ItemGroup>
                </Project>
                """);
            await File.WriteAllTextAsync(Path.Combine(dir, "Program.cs"), Snippet(Path.Combine(Paths.Repo, "sdk", "csharp", "README.md")).Replace("my-sandbox", name + "-cs", StringComparison.Ordinal));
            var cs = await Host.RunWithEnvAsync("dotnet", ["run", "-c", "Release"], dir, TimeSpan.FromMinutes(4), env);
            Assert.That(cs.Code, Is.Zero, cs.Output);
            Assert.That(cs.Stdout, Does.StartWith("2\n").And.Contain("exec.started").And.Contain($"/api/v1/hiveboxes/{name}-cs/mcp"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            await Controller.SendAsync(HttpMethod.Delete, $"/api/v1/hiveboxes/{name}-ts");
            await Controller.SendAsync(HttpMethod.Delete, $"/api/v1/hiveboxes/{name}-cs");
        }
    }

    /// <summary>The code block after <c>&lt;!-- readme-example --&gt;</c> in a README.</summary>
    private static string Snippet(string readme)
    {
        var text = File.ReadAllText(readme);
        var marker = text.IndexOf("<!-- readme-example -->", StringComparison.Ordinal);
        var start = text.IndexOf('\n', text.IndexOf("```", marker, StringComparison.Ordinal)) + 1;
        return text[start..text.IndexOf("```", start, StringComparison.Ordinal)];
    }

    private static async Task NpmAsync(string dir, params string[] args)
    {
        var run = await Host.RunWithEnvAsync("npm", args, dir, TimeSpan.FromMinutes(4), []);
        Assert.That(run.Code, Is.Zero, $"npm {string.Join(' ', args)} in {dir}:\n{run.Output}");
    }

    /// <summary>A TCP relay to the Controller whose connections the test can cut.</summary>
    private sealed class Relay : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly List<Socket> _sockets = [];
        private readonly CancellationTokenSource _stop = new();

        private Relay(TcpListener listener, Uri target)
        {
            _listener = listener;
            Url = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}";
            _ = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    Socket client;
                    try
                    {
                        client = await _listener.AcceptSocketAsync(_stop.Token);
                    }
                    catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
                    {
                        return;
                    }

                    var upstream = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    await upstream.ConnectAsync(target.Host, target.Port);
                    lock (_sockets)
                    {
                        _sockets.Add(client);
                        _sockets.Add(upstream);
                    }

                    _ = Pipe(client, upstream);
                    _ = Pipe(upstream, client);
                }
            });
        }

        public string Url { get; }

        public static Task<Relay> StartAsync(Uri target)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return Task.FromResult(new Relay(listener, target));
        }

        public void DropAll()
        {
            lock (_sockets)
            {
                foreach (var socket in _sockets)
                {
                    socket.Close(0);
                }

                _sockets.Clear();
            }
        }

        public ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            DropAll();
            _stop.Dispose();
            return ValueTask.CompletedTask;
        }

        private static async Task Pipe(Socket from, Socket to)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                int read;
                while ((read = await from.ReceiveAsync(buffer)) > 0)
                {
                    await to.SendAsync(buffer.AsMemory(0, read));
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Cut by the test.
            }
        }
    }
}
