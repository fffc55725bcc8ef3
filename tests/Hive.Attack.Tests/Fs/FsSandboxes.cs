using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Hive.Attack.Tests.Fs;

/// <summary>
/// One Controller for every workspace attack (with an operator directory for shared roots), and one
/// sandbox most of them share: workspace <c>/w</c> with rules of the kind, and <c>/c</c>,
/// whose rules the cache attacks tighten while a file is open.
/// </summary>
[SetUpFixture]
public sealed class FsSandboxes
{
    private static Task<string>? _acl;

    public static ControllerProcess Controller { get; private set; } = null!;

    /// <summary>The operator's --fs-roots directory.</summary>
    public static string Roots { get; private set; } = null!;

    /// <summary>The rules of /w: everything read-write, but the text files in private/ denied, the YAML in cfg/ read-only, and what lies in vault/ denied.</summary>
    public static readonly object[] Rules =
    [
        new { path = "/w/**", access = "rw" },
        new { path = "/w/private/*.txt", access = "deny" },
        new { path = "/w/cfg/*.yaml", access = "ro" },
        new { path = "/w/vault/*.txt", access = "deny" },
    ];

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        Roots = Directory.CreateTempSubdirectory("hive-attack-roots-").FullName;
        Controller = await ControllerProcess.StartAsync(null, null, "--fs-roots", Roots);
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        try
        {
            if (Controller is not null)
            {
                await Controller.DisposeAsync();
            }
        }
        finally
        {
            if (Roots is not null && Directory.Exists(Roots) && !File.ReadAllText("/proc/self/mountinfo").Contains(Roots, StringComparison.Ordinal))
            {
                Directory.Delete(Roots, recursive: true);
            }
        }
    }

    /// <summary>The shared sandbox (made on first use), its workspaces seeded from the host.</summary>
    public static Task<string> AclSandboxAsync() => _acl ??= CreateAclSandboxAsync();

    private static async Task<string> CreateAclSandboxAsync()
    {
        var name = Names.Unique("fs");
        await Controller.CreateAsync(new
        {
            name,
            fs = new object[]
            {
                new { mount = "/w", acls = Rules },
                new { mount = "/c", acls = new object[] { new { path = "/c/**", access = "rw" } } },
            },
        });
        var w = Backing(name, "/w");
        Directory.CreateDirectory(Path.Combine(w, "private"));
        Directory.CreateDirectory(Path.Combine(w, "cfg"));
        Directory.CreateDirectory(Path.Combine(w, "plain"));
        await File.WriteAllTextAsync(Path.Combine(w, "private", "a.txt"), "SECRET-A");
        await File.WriteAllTextAsync(Path.Combine(w, "cfg", "app.yaml"), "mode: safe\n");
        return name;
    }

    /// <summary>A workspace's backing directory on the host (the Controller keys it by the mount's hash).</summary>
    public static string Backing(string sandbox, string mount) =>
        Path.Combine(Controller.DataDir, "workspaces", sandbox, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(mount)))[..16]);

    /// <summary>Runs a shell command inside the sandbox: exit code, stdout, stderr.</summary>
    public static async Task<(int Exit, string Stdout, string Stderr)> ShAsync(string sandbox, string command, double timeout = 120)
    {
        var result = await Controller.ExecAsync(sandbox, command, timeout);
        return (result.GetProperty("exit_code").GetInt32(), result.GetProperty("stdout").GetString() ?? string.Empty, result.GetProperty("stderr").GetString() ?? string.Empty);
    }

    /// <summary>Runs a python script inside the sandbox (passed base64-encoded: no quoting); its stdout, trimmed; asserts it exited 0.</summary>
    public static async Task<string> PythonAsync(string sandbox, string script)
    {
        var (exit, stdout, stderr) = await ShAsync(sandbox, $"echo {Convert.ToBase64String(Encoding.UTF8.GetBytes(script))} | base64 -d | python3 -");
        Assert.That(exit, Is.Zero, stdout + stderr);
        return stdout.Trim();
    }

    /// <summary>Python prelude: <c>attempt(f)</c> prints "OK" or the errno's name; <c>libc</c> for raw calls.</summary>
    public const string Prelude = """
        import ctypes, errno, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        def attempt(f):
            try:
                f()
                return 'OK'
            except OSError as e:
                return errno.errorcode.get(e.errno, str(e.errno))
        def raw(rc):
            return 'OK' if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

        """;

    /// <summary>Waits for an event of <paramref name="kind"/> (exact, or a prefix such as "fs") on <paramref name="path"/> with a deny decision and <paramref name="errno"/>.</summary>
    public static async Task<JsonElement?> DeniedAsync(string sandbox, string kind, string path, int errno)
    {
        bool Match(JsonElement e) =>
            (e.GetProperty("kind").GetString() == kind || e.GetProperty("kind").GetString()!.StartsWith(kind + ".", StringComparison.Ordinal)) && e.GetProperty("path").GetString() == path
            && e.GetProperty("decision").GetString()!.StartsWith("deny", StringComparison.Ordinal) && e.GetProperty("errno").GetInt32() == errno;
        var events = await Controller.WaitForEventsAsync(sandbox, list => list.Any(Match), kind: kind, decision: "deny");
        return events.Where(Match).Select(e => (JsonElement?)e).FirstOrDefault();
    }
}
