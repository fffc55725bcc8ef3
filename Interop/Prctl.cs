using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>prctl(2): the calling process's own attributes.</summary>
public static partial class Libc
{
    public const int PR_GET_DUMPABLE = 3;
    public const int PR_SET_DUMPABLE = 4;

    /// <summary>prctl is variadic in C; every option used here takes unsigned long arguments, passed in registers like fixed ones.</summary>
    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    public static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
