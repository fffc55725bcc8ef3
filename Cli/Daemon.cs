using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Hive.Cli;

/// <summary><c>hive daemon</c>: runs the Controller in the foreground, forwarding SIGINT/SIGTERM and its exit code.</summary>
internal static class Daemon
{
    public static async Task<int> RunAsync(string[] args)
    {
        var path = Environment.GetEnvironmentVariable("HIVE_CONTROLLER_PATH") is { Length: > 0 } p
            ? p
            : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "controller", "hive-controller"));
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"hive: Controller not found at {path} (build with `make build`, or set HIVE_CONTROLLER_PATH)");
            return 1;
        }

        using var process = Process.Start(new ProcessStartInfo(path, args) { UseShellExecute = false })!;
        void Forward(PosixSignalContext context)
        {
            context.Cancel = true;
            try
            {
                process.Kill(entireProcessTree: false);
            }
            catch (InvalidOperationException)
            {
            }
        }

        // SIGINT from a terminal reaches the Controller too (same process group); SIGTERM is forwarded as a kill.
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Forward);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        await process.WaitForExitAsync();
        return process.ExitCode;
    }
}
