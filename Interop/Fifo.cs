using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Hive.Interop;

/// <summary>Named pipes (fifo(7)): created, opened without an advisory lock, waited on and asked how much they hold.</summary>
public static unsafe partial class Libc
{
    public const int EEXIST = 17;
    private const uint S_IFMT = 0xF000;
    private const uint S_IFIFO = 0x1000;

    /// <summary>ioctl(2) request: bytes that can be read from a pipe without blocking.</summary>
    private const ulong FIONREAD = 0x541B;

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkfifo(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int ioctl(SafeFileHandle fd, ulong request, int* value);

    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int fstat_handle(SafeFileHandle fd, Fuse.Stat* buf);

    /// <summary>
    /// Opens an existing FIFO, close-on-exec and without following a symlink. Blocking, but opening
    /// for reading and writing never waits for a peer, and opening for writing only waits while no
    /// reader exists. Not <see cref="File.OpenHandle"/>: it takes an advisory lock and expects a file.
    /// </summary>
    /// <exception cref="IOException">The path is missing or is not a FIFO.</exception>
    public static SafeFileHandle OpenFifo(string path, int access)
    {
        var fd = open(path, access | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
        {
            throw SyscallException.FromLastError("open", path);
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        Fuse.Stat stat;
        if (fstat_handle(handle, &stat) != 0 || (stat.Mode & S_IFMT) != S_IFIFO)
        {
            handle.Dispose();
            throw new IOException($"{path} is not a FIFO");
        }

        return handle;
    }

    private const short POLLIN = 1;

    /// <summary>struct pollfd (poll(2)); layout checked against the C header by Hive.Interop.Tests.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int poll(PollFd* fds, nuint count, int timeout);

    /// <summary>Blocks until <paramref name="fd"/> can be read without blocking (or reports an error or hang-up).</summary>
    public static void WaitReadable(SafeFileHandle fd)
    {
        var added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            var entry = new PollFd { Fd = (int)fd.DangerousGetHandle(), Events = POLLIN };
            while (poll(&entry, 1, -1) < 0)
            {
                if (Marshal.GetLastPInvokeError() != EINTR)
                {
                    throw SyscallException.FromLastError("poll");
                }
            }
        }
        finally
        {
            fd.DangerousRelease();
        }
    }

    private const int F_SETPIPE_SZ = 1031;

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int fcntl(SafeFileHandle fd, int command, int argument);

    /// <summary>Asks for a pipe buffer of <paramref name="bytes"/> (fcntl(2) F_SETPIPE_SZ); false if refused.</summary>
    public static bool TrySetPipeSize(SafeFileHandle fd, int bytes) => fcntl(fd, F_SETPIPE_SZ, bytes) >= 0;

    /// <summary>Bytes waiting in the pipe behind <paramref name="fd"/>.</summary>
    public static int BytesAvailable(SafeFileHandle fd)
    {
        int value;
        return ioctl(fd, FIONREAD, &value) == 0 ? value : throw SyscallException.FromLastError("ioctl(FIONREAD)");
    }
}
