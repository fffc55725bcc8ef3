using System.Diagnostics;
using System.Security.Cryptography;

namespace Hive.Integration.Tests;

/// <summary>The `hive` CLI against a real Controller: create, ls, exec (exit code passes through), cp both ways, rm.</summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class CliTests : SharedControllerFixture
{
    protected override string? ApiKey => "cli-test-key-42";

    private async Task<(int ExitCode, byte[] Stdout, string Stderr)> HiveAsync(params string[] args)
    {
        var start = new ProcessStartInfo(Paths.Cli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.Environment["HIVEBOX_API_URL"] = Controller.BaseAddress.ToString().TrimEnd('/');
        start.Environment["HIVEBOX_API_KEY"] = Controller.ApiKey;
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout, timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        await process.WaitForExitAsync(timeout.Token);
        await copy;
        return (process.ExitCode, stdout.ToArray(), await stderr);
    }

    [Test]
    public async Task Events_prints_the_audit_trail_one_line_per_event()
    {
        var name = Names.Unique("cli-ev");
        Assert.That((await HiveAsync("create", name)).ExitCode, Is.Zero);
        try
        {
            Assert.That((await HiveAsync("exec", name, "--", "sh", "-c", "echo hello")).ExitCode, Is.Zero);
            string text = string.Empty;
            for (var i = 0; i < 100 && !text.Contains("exec.finished", StringComparison.Ordinal); i++)
            {
                var events = await HiveAsync("events", name, "--kind", "exec");
                Assert.That(events.ExitCode, Is.Zero, events.Stderr);
                text = System.Text.Encoding.UTF8.GetString(events.Stdout);
                await Task.Delay(50);
            }

            var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines, Has.Length.EqualTo(2), text);
            Assert.That(lines[0], Does.Match(@"^#\d+ \d\d:\d\d:\d\d\.\d{3} exec\.started \[[0-9a-f]+\] sh -c 'echo hello'$"));
            Assert.That(lines[1], Does.Contain("exec.finished").And.Contain("exit 0").And.Contain("6 B out"));

            var json = await HiveAsync("events", name, "--kind", "lifecycle", "--json");
            var kinds = System.Text.Encoding.UTF8.GetString(json.Stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("kind").GetString()).ToList();
            Assert.That(kinds, Is.EqualTo(new[] { "lifecycle.created", "lifecycle.sbxd_started", "lifecycle.started" }));

            var missing = await HiveAsync("events", "no-such-sandbox");
            Assert.That(missing.ExitCode, Is.EqualTo(1));
            Assert.That(missing.Stderr, Does.Contain("not found"));
        }
        finally
        {
            await HiveAsync("rm", name);
        }
    }

    [Test]
    public async Task Create_exec_cp_ls_rm()
    {
        var name = Names.Unique("cli");
        var created = await HiveAsync("create", name, "--memory", "256m");
        Assert.That(created.ExitCode, Is.Zero, created.Stderr);

        var ls = await HiveAsync("ls");
        Assert.That(ls.ExitCode, Is.Zero, ls.Stderr);
        Assert.That(System.Text.Encoding.UTF8.GetString(ls.Stdout), Does.Contain(name).And.Contain("running"));

        var exec = await HiveAsync("exec", name, "--", "sh", "-c", "echo out; echo err >&2; exit 7");
        Assert.That(exec.ExitCode, Is.EqualTo(7), "the command's exit code passes through");
        Assert.That(System.Text.Encoding.UTF8.GetString(exec.Stdout), Is.EqualTo("out\n"));
        Assert.That(exec.Stderr, Does.Contain("err"));

        var quoted = await HiveAsync("exec", name, "--", "printf", "%s|", "a b", "it's", "$HOME");
        Assert.That(System.Text.Encoding.UTF8.GetString(quoted.Stdout), Is.EqualTo("a b|it's|$HOME|"), "arguments are passed verbatim, not re-split or expanded");

        var local = Path.Combine(Controller.DataDir, "upload.bin");
        var payload = RandomNumberGenerator.GetBytes(1 << 20);
        await File.WriteAllBytesAsync(local, payload);
        var up = await HiveAsync("cp", local, $"{name}:/work/upload.bin");
        Assert.That(up.ExitCode, Is.Zero, up.Stderr);
        var back = Path.Combine(Controller.DataDir, "download.bin");
        var down = await HiveAsync("cp", $"{name}:/work/upload.bin", back);
        Assert.That(down.ExitCode, Is.Zero, down.Stderr);
        Assert.That(await File.ReadAllBytesAsync(back), Is.EqualTo(payload));
        var toStdout = await HiveAsync("cp", $"{name}:/work/upload.bin", "-");
        Assert.That(toStdout.Stdout, Is.EqualTo(payload));

        var missing = await HiveAsync("cp", $"{name}:/no/such/file", back);
        Assert.That(missing.ExitCode, Is.EqualTo(1));
        Assert.That(missing.Stderr, Does.Contain("not found"));

        var rm = await HiveAsync("rm", name);
        Assert.That(rm.ExitCode, Is.Zero, rm.Stderr);
        Assert.That(await Host.LeftoversAsync(name, Controller.StateDir(name)), Is.Empty);
        var gone = await HiveAsync("exec", name, "--", "true");
        Assert.That(gone.ExitCode, Is.EqualTo(1));
        Assert.That(gone.Stderr, Does.Contain("not found"));
    }

    [Test]
    public async Task Wrong_key_is_a_clear_error()
    {
        var start = new ProcessStartInfo(Paths.Cli) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add("ls");
        start.Environment["HIVEBOX_API_URL"] = Controller.BaseAddress.ToString().TrimEnd('/');
        start.Environment["HIVEBOX_API_KEY"] = "wrong-key-000000";
        using var process = Process.Start(start)!;
        var stderr = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        Assert.That(process.ExitCode, Is.EqualTo(1));
        Assert.That(stderr, Does.Contain("unauthorized"));
    }

    [TestCase("bogus")]
    [TestCase("exec")]
    [TestCase("cp", "a", "b")]
    [TestCase("create", "--cpus", "lots")]
    public async Task Usage_errors_exit_2(params string[] args)
    {
        var (code, _, _) = await HiveAsync(args);
        Assert.That(code, Is.EqualTo(2));
    }
}
