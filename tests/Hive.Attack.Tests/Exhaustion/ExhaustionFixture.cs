using System.Text.Json;

namespace Hive.Attack.Tests.Exhaustion;

/// <summary>
/// A Controller of its own (with the options a fixture needs, e.g. small event budgets so the
/// attempts stay fast) and one sandbox shared by the fixture's attempts.
/// </summary>
public abstract class ExhaustionFixture
{
    protected ControllerProcess Controller { get; private set; } = null!;

    protected string Sandbox { get; private set; } = null!;

    /// <summary>Extra Controller options.</summary>
    protected virtual string[] ControllerArgs => [];

    /// <summary>The create request of the fixture's sandbox (its name is added).</summary>
    protected abstract object SandboxSpec(string name);

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Controller = await ControllerProcess.StartAsync(null, null, ControllerArgs);
        Sandbox = Names.Unique(GetType().Name.ToLowerInvariant()[..Math.Min(10, GetType().Name.Length)]);
        await Controller.CreateAsync(SandboxSpec(Sandbox));
    }

    [OneTimeTearDown]
    public async Task StopAsync() => await Controller.DisposeAsync();

    protected static string Kind(JsonElement e) => e.GetProperty("kind").GetString()!;

    protected static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) ? v.ToString() : null;

    protected static ulong Seq(JsonElement e) => e.GetProperty("seq").GetUInt64();

    /// <summary>How many occurrences an event stands for: its count when it is an aggregate, else one.</summary>
    protected static long Occurrences(JsonElement e) => e.TryGetProperty("count", out var c) ? c.GetInt64() : 1;

    /// <summary>The sandbox's workspace directory on the host.</summary>
    protected string Backing(string name) => Directory.GetDirectories(Path.Combine(Controller.DataDir, "workspaces", name)).Single();

    /// <summary>Last sequence number so far (events after it belong to what a test does next).</summary>
    protected async Task<ulong> LastSeqAsync()
    {
        var all = await Controller.EventsAsync(Sandbox);
        return all.Count == 0 ? 0 : Seq(all[^1]);
    }

    /// <summary>Polls the sandbox's events after <paramref name="since"/> until <paramref name="done"/> holds (60 s ceiling).</summary>
    protected async Task<List<JsonElement>> WaitForAsync(Func<List<JsonElement>, bool> done, string? kind = null, ulong since = 0)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var events = await Controller.EventsAsync(Sandbox, kind, since: since);
            if (done(events) || DateTime.UtcNow > deadline)
            {
                return events;
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The sandbox's event budget (GET …/events/budget).</summary>
    protected async Task<JsonElement> BudgetAsync()
    {
        var (status, body) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{Sandbox}/events/budget");
        Assert.That(status, Is.EqualTo(200), body.ToString());
        return body;
    }

    /// <summary>Runs a script (sh) inside the sandbox: written to a file first, so no quoting gets in the way.</summary>
    protected async Task<JsonElement> RunScriptAsync(string script, double timeout = 600, int expectStatus = 200)
    {
        var command = $"cat > /tmp/attempt.sh <<'HIVE_EOF'\n{script}\nHIVE_EOF\nsh /tmp/attempt.sh";
        return await Controller.ExecAsync(Sandbox, command, timeout, expectStatus);
    }
}
