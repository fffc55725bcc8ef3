using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace Hive.Attack.Tests.Pid1;

/// <summary>
/// Attacks on a sandbox's init (hive-agent, PID 1) from the sandbox's own root shell, and the host-side
/// checks that it is still the same process afterwards.
/// </summary>
public abstract class InitFixture : SharedControllerFixture
{
    /// <summary>Where the raw system call helper (Hive.Testing/Resources/pid1_attacks.py) lives inside a sandbox.</summary>
    protected const string AttackScript = "/opt/pid1_attacks.py";

    protected const int EPERM = 1;
    protected const int ENOSYS = 38;

    protected async Task<string> CreateSandboxAsync(string prefix, Dictionary<string, object>? extra = null)
    {
        var name = Names.Unique(prefix);
        var body = new Dictionary<string, object> { ["name"] = name };
        foreach (var (key, value) in extra ?? [])
        {
            body[key] = value;
        }

        await Controller.CreateAsync(body);
        using var script = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "Resources", "pid1_attacks.py")));
        using var put = await Controller.Http.PutAsync($"/api/v1/hiveboxes/{name}/files?path={AttackScript}", script);
        Assert.That(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
        return name;
    }

    /// <summary>Runs <paramref name="command"/> as root in the sandbox's shell.</summary>
    protected async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string sandbox, string command)
    {
        var result = await Controller.ExecAsync(sandbox, command, timeout: 60);
        return (result.GetProperty("exit_code").GetInt32(), result.GetProperty("stdout").GetString()!, result.GetProperty("stderr").GetString()!);
    }

    /// <summary>One raw attack (see pid1_attacks.py): the return value and errno of each call it made.</summary>
    protected async Task<(long Result, int Errno)[]> AttackAsync(string sandbox, params object[] args)
    {
        var (exit, stdout, stderr) = await RunAsync(sandbox, $"python3 {AttackScript} {string.Join(' ', args.Select(a => Convert.ToString(a, CultureInfo.InvariantCulture)))}");
        Assert.That(exit, Is.Zero, stderr);
        var numbers = stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(n => long.Parse(n, CultureInfo.InvariantCulture)).ToArray();
        return [.. numbers.Chunk(2).Select(pair => (pair[0], (int)pair[1]))];
    }

    /// <summary>
    /// The init is the process it was, it keeps answering, and the sandbox recorded no stop or restart.
    /// A few rounds apart: an init that was told to shut down stops answering within them.
    /// </summary>
    protected async Task AssertSameInitAsync(string sandbox, InitProcess before)
    {
        for (var round = 0; round < 5; round++)
        {
            // (Exit status only: the output of a command is read for 100 ms after it exits, which a
            // starved CPU can outlast; an init that is gone fails the exec itself.)
            var (exit, _, stderr) = await RunAsync(sandbox, "true");
            Assert.That(exit, Is.Zero, "the sandbox's init stopped answering: " + stderr);
            await Task.Delay(300);
        }

        Assert.That(await InitProcess.OfAsync(sandbox), Is.EqualTo(before), "the sandbox's init is another process now");
        var lifecycle = await Controller.EventsAsync(sandbox, kind: "lifecycle.stopped,lifecycle.restarted");
        Assert.That(lifecycle, Is.Empty, "the container was restarted");
    }

    /// <summary>Kills the init from the host (as a crash would) and waits until the container runs again with a new one.</summary>
    protected async Task<InitProcess> RestartFromHostAsync(string sandbox)
    {
        var before = await InitProcess.OfAsync(sandbox);
        await Host.RunAsync("kill", "-KILL", before.Pid.ToString(CultureInfo.InvariantCulture));
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline)
        {
            await Task.Delay(300);
            using var response = await Controller.Http.PostAsJsonAsync($"/api/v1/hiveboxes/{sandbox}/exec", new { command = "true" });
            if (response.IsSuccessStatusCode)
            {
                var now = await InitProcess.OfAsync(sandbox);
                if (now != before)
                {
                    return now;
                }
            }
        }

        Assert.Fail("the sandbox did not come back after its init was killed:\n" + Controller.Log);
        return before;
    }

    /// <summary>An MCP initialize through the Controller: the agent's MCP server at work (it loads OpenSSL).</summary>
    protected async Task InitializeMcpAsync(string sandbox, string path = "mcp")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/v1/hiveboxes/{sandbox}/{path}")
        {
            Content = JsonContent.Create(new { jsonrpc = "2.0", id = 1, method = "initialize", @params = new { protocolVersion = "2025-06-18", capabilities = new { }, clientInfo = new { name = "attack", version = "1" } } }),
        };
        request.Headers.Accept.ParseAdd("application/json");
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var response = await Controller.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.That((int)response.StatusCode, Is.EqualTo(200), text);
        Assert.That(text, Does.Contain("hive-sandbox"));
    }

    protected static JsonElement Parse(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
