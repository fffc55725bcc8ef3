using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>Signal dispositions a process inherits.</summary>
public static partial class Libc
{
    public const int SIGHUP = 1;
    public const int SIGINT = 2;

    private const nint SIG_DFL = 0;
    private const nint SIG_IGN = 1;

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial nint signal(int signum, nint handler);

    /// <summary>
    /// Makes <paramref name="signals"/> default again where the process inherited them ignored (a
    /// daemon started under <c>nohup</c>, or as a background job, ignores SIGHUP, SIGINT and SIGQUIT,
    /// and exec keeps that). The .NET runtime then leaves them ignored too, and a
    /// <see cref="PosixSignalRegistration"/> for them never fires. Call before registering.
    /// </summary>
    public static void RestoreIgnoredSignals(params int[] signals)
    {
        foreach (var sig in signals)
        {
            var previous = signal(sig, SIG_DFL);
            if (previous != SIG_IGN && previous != SIG_DFL && previous != -1)
            {
                signal(sig, previous); // someone's handler (the runtime's): leave it be
            }
        }
    }
}
