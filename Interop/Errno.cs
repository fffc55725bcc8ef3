using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>A failed syscall: carries the call, the errno (number and name) and the path it was about.</summary>
public sealed class SyscallException : IOException
{
    public SyscallException(string syscall, int errno, string? path = null)
        : base(Format(syscall, errno, path))
    {
        Syscall = syscall;
        Errno = errno;
        PathName = path;
        HResult = errno;
    }

    public string Syscall { get; }

    public int Errno { get; }

    public string? PathName { get; }

    /// <summary>Throws for the errno of the last P/Invoke marked SetLastError.</summary>
    public static SyscallException FromLastError(string syscall, string? path = null) =>
        new(syscall, Marshal.GetLastPInvokeError(), path);

    private static string Format(string syscall, int errno, string? path)
    {
        var text = Marshal.GetPInvokeErrorMessage(errno);
        return path is null ? $"{syscall}: {text} (errno {errno})" : $"{syscall}({path}): {text} (errno {errno})";
    }
}
