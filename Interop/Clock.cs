using System.Runtime.InteropServices;
using Hive.Interop.Fuse;

namespace Hive.Interop;

/// <summary>clock_gettime(2), for the CPU time a thread has used (a work budget that a loaded host does not eat into).</summary>
public static unsafe partial class Libc
{
    public const int CLOCK_THREAD_CPUTIME_ID = 3;

    [LibraryImport("libc", EntryPoint = "clock_gettime", SetLastError = true)]
    public static partial int clock_gettime(int clock, Timespec* time);

    /// <summary>CPU time the calling thread has used so far.</summary>
    public static TimeSpan ThreadCpuTime()
    {
        var t = default(Timespec);
        return clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0 ? TimeSpan.FromTicks((t.Seconds * TimeSpan.TicksPerSecond) + (t.Nanoseconds / 100)) : TimeSpan.Zero;
    }
}
