namespace Hive.SbxFuse.Tests;

/// <summary>Runs Python attempts on the host as another user, as the permission and id-map tests need.</summary>
internal static class AsUser
{
    /// <summary>
    /// Runs a Python script (the system one: root's PATH may lead into /root) as host uid/gid
    /// <paramref name="uid"/> with the given supplementary groups (none: cleared); one "name=result" line per attempt.
    /// </summary>
    public static async Task<Dictionary<string, string>> RunAsync(uint uid, string script, params uint[] groups)
    {
        var prelude = """
            import os, sys, errno
            def attempt(name, f):
                try:
                    r = f()
                    print(f"{name}=ok" if r is None else f"{name}={r}")
                except OSError as e:
                    print(f"{name}={errno.errorcode[e.errno]}")
            """;
        string[] identity = groups.Length == 0
            ? ["--reuid", $"{uid}", "--regid", $"{uid}", "--clear-groups"]
            : ["--reuid", $"{uid}", "--regid", $"{uid}", "--groups", string.Join(',', groups)];
        var (code, output) = await GovernedMountTests.RunAsync("setpriv", [.. identity, "/usr/bin/python3", "-c", prelude + "\n" + script]);
        Assert.That(code, Is.Zero, output);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains('=')).ToDictionary(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);
    }
}
