using System.Diagnostics;

namespace Hive.Sbxd.Runtime;

/// <summary>Runs host tools (runc, ip) and captures their output.</summary>
internal static class Command
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public bool Ok => ExitCode == 0;

        public string Describe(string what) => $"{what} failed (exit {ExitCode}): {(Stderr.Length > 0 ? Stderr : Stdout).Trim()}";
    }

    public static async Task<Result> RunAsync(string file, IEnumerable<string> args, CancellationToken cancellationToken, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        process.StandardInput.Close();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout ?? TimeSpan.FromSeconds(60));
        var stdout = process.StandardOutput.ReadToEndAsync(limit.Token);
        var stderr = process.StandardError.ReadToEndAsync(limit.Token);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', start.ArgumentList)} did not finish in time");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }

    public static async Task<Result> RequireAsync(string file, IEnumerable<string> args, string what, CancellationToken cancellationToken)
    {
        var result = await RunAsync(file, args, cancellationToken);
        return result.Ok ? result : throw new InvalidOperationException(result.Describe(what));
    }
}
