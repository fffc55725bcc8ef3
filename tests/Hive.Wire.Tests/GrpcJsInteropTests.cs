using System.Diagnostics;
using Hive.Protos.V1;

namespace Hive.Wire.Tests;

/// <summary>Wire compatibility with Node's @grpc/grpc-js, both directions, over a Unix socket and TCP.</summary>
[CancelAfter(180_000)]
public sealed class GrpcJsInteropTests
{
    private static readonly string Dir = Path.Combine(FindRepo(), "tests", "interop", "grpc-js");
    private EchoServer _server = null!;

    [OneTimeSetUp]
    public async Task SetUpAsync()
    {
        if (!Directory.Exists(Path.Combine(Dir, "node_modules", "@grpc", "grpc-js")) || !Directory.Exists(Path.Combine(Dir, "node_modules", "@grpc", "proto-loader")))
        {
            var (code, output) = await RunAsync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], TimeSpan.FromMinutes(3));
            Assert.That(code, Is.Zero, "npm install failed:\n" + output);
        }

        _server = await EchoServer.StartAsync();
    }

    [OneTimeTearDown]
    public async Task TearDownAsync() => await _server.DisposeAsync();

    [Test]
    public async Task Grpc_js_client_calls_hive_wire_over_a_unix_socket() => await ClientChecksAsync("unix:" + _server.SocketPath);

    [Test]
    public async Task Grpc_js_client_calls_hive_wire_over_tcp() => await ClientChecksAsync($"127.0.0.1:{_server.Port}");

    [Test]
    public async Task Hive_wire_client_calls_a_grpc_js_server()
    {
        var start = new ProcessStartInfo("node", ["server.js"]) { WorkingDirectory = Dir, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        using var node = Process.Start(start)!;
        try
        {
            var line = await node.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.That(line, Does.StartWith("listening "));
            using var channel = GrpcChannel.ForAddress(new Uri("http://127.0.0.1:" + line!["listening ".Length..]));
            var options = new CallOptions(TimeSpan.FromSeconds(10));

            var said = await channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Say", new EchoRequest { Text = "from .NET ✓" }, options);
            Assert.That(said.Text, Is.EqualTo("from .NET ✓"));

            var ex = Assert.ThrowsAsync<RpcException>(() => channel.UnaryAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Fail", new EchoRequest { Text = "ü" }, options))!;
            Assert.That(ex.StatusCode, Is.EqualTo(StatusCode.PermissionDenied));
            Assert.That(ex.Detail, Is.EqualTo("denied: ü"));

            var indexes = new List<int>();
            await foreach (var r in channel.ServerStreamingAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Count", new EchoRequest { Text = "s", Count = 25 }, options))
            {
                indexes.Add(r.Index);
            }

            Assert.That(indexes, Is.EqualTo(Enumerable.Range(0, 25)));

            static async IAsyncEnumerable<EchoRequest> Parts()
            {
                foreach (var p in new[] { "x", "y", "z" })
                {
                    await Task.Yield();
                    yield return new EchoRequest { Text = p };
                }
            }

            var collected = await channel.ClientStreamingAsync<EchoRequest, EchoReply>("/hive.v1.Echo/Collect", Parts(), options);
            Assert.That(collected.Text, Is.EqualTo("xyz"));
            Assert.That(collected.Index, Is.EqualTo(3));
        }
        finally
        {
            node.StandardInput.Close();
            if (!node.WaitForExit(5000))
            {
                node.Kill();
            }
        }
    }

    private static async Task ClientChecksAsync(string target)
    {
        var (code, output) = await RunAsync("node", ["client.js", target], TimeSpan.FromSeconds(60));
        Assert.That(code, Is.Zero, output);
        foreach (var check in new[] { "unary", "error", "server-streaming", "client-streaming", "deadline" })
        {
            Assert.That(output, Does.Contain("ok " + check), output);
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, string[] args, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file, args) { WorkingDirectory = Dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Hive.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
