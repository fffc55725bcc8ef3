using Microsoft.Win32.SafeHandles;

namespace Hive.Interop;

/// <summary>
/// O_PATH descriptors (open(2)): a handle on a directory that grants no access to its contents,
/// used where the kernel must be given a layer by reference rather than by its host path.
/// </summary>
public static partial class Libc
{
    /// <summary>Opens <paramref name="path"/> (a directory; symlinks followed) as an O_PATH, close-on-exec descriptor.</summary>
    public static SafeFileHandle OpenDirectoryPath(string path)
    {
        var fd = openat2(AT_FDCWD, path, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, 0);
        if (fd < 0)
        {
            throw SyscallException.FromLastError("open(O_PATH)", path);
        }

        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>The magic link naming <paramref name="handle"/> in this process (valid while the handle is open).</summary>
    public static string ProcFdPath(SafeFileHandle handle) =>
        "/proc/self/fd/" + handle.DangerousGetHandle().ToString(System.Globalization.CultureInfo.InvariantCulture);
}
