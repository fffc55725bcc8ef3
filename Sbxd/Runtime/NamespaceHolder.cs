using System.Diagnostics;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// A short-lived process that has just entered new namespaces (through <c>unshare(1)</c>, after
/// <c>nsenter(1)</c> where it must start inside the sandbox's user namespace) and waits there until
/// disposed: long enough for Sbxd to write its user namespace's id maps and to keep its namespaces
/// with bind mounts (<c>/proc/PID/ns/*</c>). Sbxd never enters a namespace itself (its threads are
/// shared); the holder's shell says <c>ready</c> once it runs, so its namespaces exist by then.
/// </summary>
internal sealed class NamespaceHolder : IDisposable
{
    private readonly Process _process;

    private NamespaceHolder(Process process) => _process = process;

    public int Pid => _process.Id;

    /// <summary>
    /// Runs <paramref name="prefix"/> (the namespace-making commands) with a shell that runs
    /// <paramref name="setup"/> in the new namespaces (a failure there fails the start), then reports and waits.
    /// </summary>
    public static async Task<NamespaceHolder> StartAsync(IReadOnlyList<string> prefix, CancellationToken cancellationToken, string? setup = null)
    {
        var start = new ProcessStartInfo(prefix[0]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in prefix.Skip(1).Concat(["/bin/sh", "-c", $"set -e; {setup ?? ":"}; echo ready; read _"]))
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {prefix[0]}");
        var holder = new NamespaceHolder(process);
        try
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(30));
            var line = await process.StandardOutput.ReadLineAsync(limit.Token);
            if (line != "ready")
            {
                var error = await process.StandardError.ReadToEndAsync(limit.Token);
                throw new InvalidOperationException($"{string.Join(' ', prefix)} failed: {error.Trim()}");
            }

            return holder;
        }
        catch
        {
            holder.Dispose();
            throw;
        }
    }

    /// <summary>Lets the holder exit (its stdin closes) and reaps it; a holder that does not go is killed.</summary>
    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(5000))
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started or already reaped.
        }
        finally
        {
            _process.Dispose();
        }
    }
}
