using System.Text.Json;

namespace Hive.SbxFuse.Tests;

/// <summary>Renames that would change what the rules decide beneath the moved directory answer EXDEV and are recorded.</summary>
[CancelAfter(120_000)]
public sealed class RenameTests
{
    private static readonly object[] Rules =
    [
        new { path = "/workspace/**", access = "rw" },
        new { path = "/workspace/private/*.txt", access = "deny" },
        new { path = "/workspace/cfg/*.yaml", access = "ro" },
    ];

    private static void Seed(string source)
    {
        Directory.CreateDirectory(Path.Combine(source, "private"));
        Directory.CreateDirectory(Path.Combine(source, "cfg"));
        Directory.CreateDirectory(Path.Combine(source, "plain"));
        File.WriteAllText(Path.Combine(source, "private", "a.txt"), "SECRET");
        File.WriteAllText(Path.Combine(source, "private", "readme"), "public");
        File.WriteAllText(Path.Combine(source, "cfg", "app.yaml"), "mode: safe\n");
        File.WriteAllText(Path.Combine(source, "f1"), "one");
        File.WriteAllText(Path.Combine(source, "f2"), "two");
    }

    /// <summary>renameat2(2) through ctypes: prints "OLD NEW errno" per attempt (0 = done).</summary>
    internal static string RenameScript(string mount, params (string From, string To, int Flags)[] attempts) => $$"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        for old, new, flags in {{JsonSerializer.Serialize(attempts.Select(a => new object[] { a.From, a.To, a.Flags }))}}:
            rc = libc.renameat2(-100, os.path.join('{{mount}}', old).encode(), -100, os.path.join('{{mount}}', new).encode(), flags)
            print(old, new, 0 if rc == 0 else ctypes.get_errno())
        """;

    private static Dictionary<string, int> Results(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).Where(p => p.Length == 3)
            .ToDictionary(p => p[0] + " -> " + p[1], p => int.Parse(p[2], System.Globalization.CultureInfo.InvariantCulture));

    [Test]
    public async Task A_directory_rename_that_changes_a_decision_beneath_answers_exdev_and_is_recorded()
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed);
        Directory.CreateDirectory(fs.M("prepared"));
        var (code, output) = await GovernedMountTests.RunAsync("python3", "-c", RenameScript(
            fs.Target,
            ("private", "x", 0),
            ("cfg", "c2", 0),
            ("private", "y", 1), // RENAME_NOREPLACE
            ("prepared", "cfg", 2), // RENAME_EXCHANGE
            ("plain", "plain2", 0),
            ("private/readme", "readme", 0),
            ("f1", "f2", 2)));
        Assert.That(code, Is.Zero, output);
        Assert.That(Results(output), Is.EqualTo(new Dictionary<string, int>
        {
            ["private -> x"] = 18,
            ["cfg -> c2"] = 18,
            ["private -> y"] = 18,
            ["prepared -> cfg"] = 18,
            ["plain -> plain2"] = 0, // nothing beneath it is decided differently
            ["private/readme -> readme"] = 0, // a file: nothing beneath it
            ["f1 -> f2"] = 0, // two files swapped
        }));
        Assert.That(File.ReadAllText(Path.Combine(fs.Source, "private", "a.txt")), Is.EqualTo("SECRET"), "still where its rule denies it");
        Assert.That(File.ReadAllText(Path.Combine(fs.Source, "cfg", "app.yaml")), Is.EqualTo("mode: safe\n"));
        Assert.That(File.ReadAllText(Path.Combine(fs.Source, "f2")), Is.EqualTo("one"));

        var audit = await fs.AuditAsync();
        var refused = audit.Where(e => e.GetProperty("kind").GetString() == "fs.rename" && e.GetProperty("decision").GetString() == "deny").ToList();
        Assert.That(refused.Select(e => (e.GetProperty("path").GetString(), e.GetProperty("target").GetString(), e.GetProperty("errno").GetInt32())), Is.EquivalentTo(new[]
        {
            ("/workspace/private", "/workspace/x", 18),
            ("/workspace/cfg", "/workspace/c2", 18),
            ("/workspace/private", "/workspace/y", 18),
            ("/workspace/prepared", "/workspace/cfg", 18),
        }));
    }

    [Test]
    public async Task Mv_falls_back_to_copying_and_every_copied_entry_is_decided()
    {
        await using var fs = await SbxFuseProcess.StartAsync(Rules, prepare: Seed);
        var (code, output) = await GovernedMountTests.RunAsync("/bin/sh", "-c", $"cd {fs.Target} && mv private x; echo mv=$?; cat x/a.txt; echo cat=$?");
        Assert.That(output, Does.Contain("mv=1").And.Contain("cat=1"), output);
        Assert.That(File.Exists(Path.Combine(fs.Source, "x", "a.txt")), Is.False, "the denied file was neither listed nor copied");
        Assert.That(File.ReadAllText(Path.Combine(fs.Source, "private", "a.txt")), Is.EqualTo("SECRET"));
        Assert.That(File.ReadAllText(Path.Combine(fs.Source, "x", "readme")), Is.EqualTo("public"), "what the rules allow was copied");
        Assert.That(code, Is.Zero);
    }
}
