namespace Hive.Integration.Tests;

/// <summary>One workspace served to several sandboxes through an operator-allowed root.</summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class SharedWorkspaceTests
{
    private ControllerProcess _controller = null!;
    private string _roots = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _roots = Directory.CreateTempSubdirectory("hive-fs-roots-").FullName;
        _controller = await ControllerProcess.StartAsync(null, null, "--fs-roots", _roots);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        await _controller.DisposeAsync();
        Directory.Delete(_roots, recursive: true);
    }

    [Test]
    public async Task Roots_outside_the_allowed_directories_are_refused()
    {
        var outside = await _controller.CreateAsync(new { name = Names.Unique("esc"), fs = new[] { new { mount = "/w", root = "/etc" } } }, expectStatus: 400);
        Assert.That(outside.GetProperty("error").GetString(), Does.Contain("not allowed"));
        Directory.CreateSymbolicLink(Path.Combine(_roots, "sneaky"), "/etc");
        var viaLink = await _controller.CreateAsync(new { name = Names.Unique("esc"), fs = new[] { new { mount = "/w", root = _roots + "/sneaky/x" } } }, expectStatus: 400);
        Assert.That(viaLink.GetProperty("error").GetString(), Does.Contain("not allowed"), "a symlink inside the allowed root cannot lead out of it");
        var dotdot = await _controller.CreateAsync(new { name = Names.Unique("esc"), fs = new[] { new { mount = "/w", root = _roots + "/../etc" } } }, expectStatus: 400);
        Assert.That(dotdot.GetProperty("error").GetString(), Does.Contain("normalized"));
        Assert.That(Directory.Exists("/etc/x"), Is.False);
    }

    [Test]
    public async Task A_coordinator_reads_what_agents_write_and_concurrent_writers_stay_consistent()
    {
        var root = Path.Combine(_roots, "team-" + Guid.NewGuid().ToString("N")[..8]);
        string a = Names.Unique("agent-a"), b = Names.Unique("agent-b"), lead = Names.Unique("lead");
        await _controller.CreateAsync(new { name = a, fs = new[] { new { mount = "/findings", root } } });
        await _controller.CreateAsync(new { name = b, fs = new[] { new { mount = "/findings", root } } });
        await _controller.CreateAsync(new { name = lead, fs = new[] { new { mount = "/findings", root, acls = new[] { new { path = "/findings/**", access = "ro" } } } } });
        try
        {
            await _controller.ExecAsync(a, "echo 'bug in parser' > /findings/a.txt");
            var read = await _controller.ExecAsync(lead, "cat /findings/a.txt");
            Assert.That(read.GetProperty("stdout").GetString(), Is.EqualTo("bug in parser\n"));
            var write = await _controller.ExecAsync(lead, "echo overwrite > /findings/a.txt");
            Assert.That(write.GetProperty("stderr").GetString(), Does.Contain("Read-only"), "the coordinator's view is read-only");

            // Two writers append concurrently: every line arrives whole, none is lost.
            const string append = "python3 -c \"import os\nfd = os.open('/findings/log.txt', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)\nfor i in range(300): os.write(fd, ('%s-%03d ' % (os.environ['HIVE_SANDBOX'][:7], i) + 'x' * 100 + '\\n').encode())\"";
            await Task.WhenAll(_controller.ExecAsync(a, append, timeout: 120), _controller.ExecAsync(b, append, timeout: 120));
            var lines = File.ReadAllLines(Path.Combine(root, "log.txt"));
            Assert.That(lines, Has.Length.EqualTo(600));
            var torn = lines.Where(l => l.Length != 112 || !l.EndsWith(new string('x', 100), StringComparison.Ordinal)).Take(3).ToList();
            Assert.That(torn, Is.Empty, "no torn or interleaved lines");

            // A shared workspace is not cached by the kernel: changes are visible to the others at once.
            await _controller.ExecAsync(a, "echo 'and a second one' >> /findings/a.txt");
            var again = await _controller.ExecAsync(lead, "cat /findings/a.txt; wc -l < /findings/log.txt");
            Assert.That(again.GetProperty("stdout").GetString(), Is.EqualTo("bug in parser\nand a second one\n600\n"));
            await _controller.ExecAsync(b, "echo 1 > /findings/tmp.txt && cat /findings/tmp.txt");
            await _controller.ExecAsync(a, "rm /findings/tmp.txt");
            var recreate = await _controller.ExecAsync(b, "echo 2 > /findings/tmp.txt && cat /findings/tmp.txt");
            Assert.That(recreate.GetProperty("stdout").GetString(), Is.EqualTo("2\n"), recreate.ToString());
        }
        finally
        {
            foreach (var name in new[] { a, b, lead })
            {
                await _controller.DestroyAsync(name);
            }
        }

        Assert.That(File.ReadAllText(Path.Combine(root, "a.txt")), Is.EqualTo("bug in parser\nand a second one\n"), "the shared workspace outlives its sandboxes");
    }
}
