using System.Globalization;

namespace Hive.Attack.Tests.Pid1;

/// <summary>
/// The sandbox owns the tree its init starts in (/etc, /usr/lib, /opt, /): whatever it plants there
/// must not be loaded into hive-agent when the container starts again. Each attempt plants, restarts
/// the container (from the host: the sandbox cannot), makes the agent load what it loads lazily
/// (an MCP session brings in OpenSSL) and reads the new init's memory map from the host: every file
/// in it must come from /.hive, the read-only bundle.
/// </summary>
[TestFixture]
[Category(From.Inside)]
[CancelAfter(900_000)]
public sealed class InitLoadingTests : InitFixture
{
    /// <summary>
    /// Any real shared library of the image serves as the planted one: mapping it at all is the breach.
    /// A gconv module needs nothing but libc and has no SONAME, so ldconfig files it under the name it
    /// is given.
    /// </summary>
    private const string Planted = "/usr/lib/x86_64-linux-gnu/gconv/ISO8859-1.so";

    [Test]
    [Defence("the bundled loader reads /.hive/no-preload, not /etc/ld.so.preload")]
    public async Task A_preload_file_planted_in_etc_is_not_loaded_into_the_agent()
    {
        await PlantRestartAndCheckAsync($"cp {Planted} /tmp/planted.so && echo /tmp/planted.so > /etc/ld.so.preload", "/tmp/planted.so");
    }

    [Test]
    [Defence("the agent's environment is its bundle's alone; the commands' (here LD_PRELOAD) reaches only commands")]
    public async Task LD_PRELOAD_meant_for_commands_does_not_reach_the_agent()
    {
        await PlantRestartAndCheckAsync(
            $"cp {Planted} /tmp/planted-env.so",
            "/tmp/planted-env.so",
            new() { ["env"] = new Dictionary<string, string> { ["LD_PRELOAD"] = "/tmp/planted-env.so" } },
            async sandbox =>
            {
                var (_, stdout, _) = await RunAsync(sandbox, "env");
                Assert.That(stdout, Does.Contain("LD_PRELOAD=/tmp/planted-env.so\n"), "the commands still get the variable");
            });
    }

    [Test]
    [Defence("the bundled loader searches /.hive/lib only, never /lib or /usr/lib of the sandbox")]
    public async Task A_library_planted_where_the_runtime_looks_for_one_is_not_loaded()
    {
        // libcoreclr dlopens LTTng's tracepoint library at every start; the image does not have one.
        await PlantRestartAndCheckAsync($"cp {Planted} /usr/lib/x86_64-linux-gnu/liblttng-ust-tracepoint.so.0", "/usr/lib/x86_64-linux-gnu/liblttng-ust-tracepoint.so.0");
    }

    [Test]
    [Defence("the bundled loader reads /.hive/no-cache, not /etc/ld.so.cache")]
    public async Task A_library_cache_pointing_into_the_sandbox_is_not_used()
    {
        await PlantRestartAndCheckAsync(
            $"mkdir -p /tmp/plantedlib && cp {Planted} /tmp/plantedlib/liblttng-ust-tracepoint.so.0 && echo /tmp/plantedlib > /etc/ld.so.conf.d/planted.conf && ldconfig && ldconfig -p | grep -q /tmp/plantedlib/liblttng",
            "/tmp/plantedlib/liblttng-ust-tracepoint.so.0");
    }

    [Test]
    [Defence(".NET host: CORE_SERVICING names an empty directory in the bundle, so /opt/coreservicing is never probed")]
    public async Task A_serviced_assembly_planted_in_opt_coreservicing_is_not_loaded()
    {
        // Where the .NET host looks for a "serviced" copy of a package the agent uses.
        const string Find = "python3 -c 'import json; d = json.load(open(\"/.hive/agent/hive-agent.deps.json\")); t = next(iter(d[\"targets\"].values())); k = next(k for k in t if k.startswith(\"Google.Protobuf/\")); print(d[\"libraries\"][k][\"path\"] + \"/\" + next(iter(t[k][\"runtime\"])))'";
        await PlantRestartAndCheckAsync(
            $"p=/opt/coreservicing/pkgs/$({Find}) && mkdir -p $(dirname $p) && cp /.hive/agent/Google.Protobuf.dll $p && ls $p",
            "/opt/coreservicing/");
    }

    [Test]
    [Defence("PID 1's web host has no configuration sources and its content root is the bundle, not the sandbox's /")]
    public async Task An_appsettings_file_in_the_sandbox_root_does_not_open_a_port_in_the_agent()
    {
        var sandbox = await CreateSandboxAsync("pid1-cfg");
        try
        {
            const int Port = 9399;
            var (exit, _, stderr) = await RunAsync(sandbox, $"echo '{{\"Kestrel\":{{\"Endpoints\":{{\"planted\":{{\"Url\":\"http://0.0.0.0:{Port}\"}}}}}},\"urls\":\"http://0.0.0.0:{Port + 1}\"}}' > /appsettings.json");
            Assert.That(exit, Is.Zero, stderr);
            await RestartFromHostAsync(sandbox);
            await InitializeMcpAsync(sandbox);
            var listening = await RunAsync(sandbox, "cat /proc/net/tcp /proc/net/tcp6 | awk '$4 == \"0A\" { print $2 }'");
            foreach (var port in new[] { Port, Port + 1 })
            {
                Assert.That(listening.Stdout, Does.Not.Contain(":" + port.ToString("X4", CultureInfo.InvariantCulture)), $"the agent listens on the planted port {port}");
            }

            Assert.That(listening.Stdout, Does.Contain("0100007F:1F90"), "the agent's own MCP port (127.0.0.1:8080) is there");
        }
        finally
        {
            await Controller.DestroyAsync(sandbox);
        }
    }

    /// <summary>Plants with <paramref name="plant"/> (must succeed), restarts the container, and checks the new init's map (then <paramref name="alsoCheck"/>).</summary>
    private async Task PlantRestartAndCheckAsync(string plant, string plantedPath, Dictionary<string, object>? create = null, Func<string, Task>? alsoCheck = null)
    {
        var sandbox = await CreateSandboxAsync("pid1-lib", create);
        try
        {
            var (exit, _, stderr) = await RunAsync(sandbox, plant);
            Assert.That(exit, Is.Zero, "planting failed: " + stderr);
            var init = await RestartFromHostAsync(sandbox);
            await InitializeMcpAsync(sandbox);
            var (alive, _, _) = await RunAsync(sandbox, "true");
            Assert.That(alive, Is.Zero);

            var mapped = init.MappedFiles();
            Assert.That(mapped.Where(f => f.StartsWith(plantedPath, StringComparison.Ordinal)), Is.Empty, "the planted file is mapped into the agent");
            Assert.That(mapped.Where(f => !f.StartsWith("/.hive/", StringComparison.Ordinal) && !f.StartsWith("/memfd:", StringComparison.Ordinal)), Is.Empty, "files from outside the bundle are mapped into the agent");
            Assert.That(mapped, Does.Contain("/.hive/lib/libssl.so.3"), "the agent loaded OpenSSL (lazily, for MCP) from the bundle");
            if (alsoCheck is not null)
            {
                await alsoCheck(sandbox);
            }
        }
        finally
        {
            await Controller.DestroyAsync(sandbox);
        }
    }
}
