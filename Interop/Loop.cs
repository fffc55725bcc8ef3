using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Hive.Interop;

/// <summary>
/// Loop devices (loop(4)): a file attached as a block device, so a file system image can be mounted.
/// Hive gives each sandbox's writable layer and each workspace with a quota a file system of its own
/// this way (docs/ARCHITECTURE.md, "Disk quotas").
/// </summary>
public static unsafe partial class Libc
{
    /// <summary>Detach the device when its last opener closes it: unmounting is the whole teardown.</summary>
    public const uint LO_FLAGS_AUTOCLEAR = 4;

    /// <summary>I/O to the backing file bypasses its page cache (the mounted file system has one already).</summary>
    public const uint LO_FLAGS_DIRECT_IO = 16;

    private const ulong LOOP_CLR_FD = 0x4C01;
    private const ulong LOOP_GET_STATUS64 = 0x4C05;
    private const ulong LOOP_CONFIGURE = 0x4C0A;
    private const ulong LOOP_CTL_GET_FREE = 0x4C82;

    /// <summary>The block major of loop devices (Documentation/admin-guide/devices.txt).</summary>
    public const uint LoopMajor = 7;

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int ioctl_ptr(int fd, ulong request, void* arg);

    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int ioctl_value(int fd, ulong request, nint arg);

    /// <summary>
    /// Attaches <paramref name="backing"/> (opened read-write) to a free loop device with
    /// <see cref="LO_FLAGS_AUTOCLEAR"/> and, where the backing file system allows it, direct I/O.
    /// Returns the device, open: the caller keeps it open until the file system on it is mounted
    /// (autoclear detaches it at the last close), then closes it.
    /// </summary>
    /// <exception cref="SyscallException">No device could be had, or the kernel refused the file.</exception>
    public static SafeFileHandle AttachLoop(SafeFileHandle backing, uint blockSize, out string devicePath)
    {
        ArgumentNullException.ThrowIfNull(backing);
        var control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (control < 0)
        {
            throw SyscallException.FromLastError("open", "/dev/loop-control");
        }

        try
        {
            var flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;

            // LOOP_CTL_GET_FREE names a free device, but another process may configure it first
            // (EBUSY): then ask again.
            for (var attempt = 0; attempt < 64; attempt++)
            {
                var index = ioctl_value(control, LOOP_CTL_GET_FREE, 0);
                if (index < 0)
                {
                    throw SyscallException.FromLastError("ioctl(LOOP_CTL_GET_FREE)", "/dev/loop-control");
                }

                var path = "/dev/loop" + index.ToString(CultureInfo.InvariantCulture);
                var fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                {
                    // devtmpfs makes the node as the device appears; a moment later it is there.
                    if (Marshal.GetLastPInvokeError() == ENOENT)
                    {
                        Thread.Sleep(5);
                        continue;
                    }

                    throw SyscallException.FromLastError("open", path);
                }

                var config = default(LoopConfig);
                config.Fd = (uint)backing.DangerousGetHandle();
                config.BlockSize = blockSize;
                config.Info.Flags = flags;
                var rc = ioctl_ptr(fd, LOOP_CONFIGURE, &config);
                if (rc == 0)
                {
                    devicePath = path;
                    return new SafeFileHandle(fd, ownsHandle: true);
                }

                var error = Marshal.GetLastPInvokeError();
                close(fd);
                if (error == EBUSY)
                {
                    continue;
                }

                if (error == EINVAL && (flags & LO_FLAGS_DIRECT_IO) != 0)
                {
                    // The backing file system cannot do direct I/O at this block size: buffered it is.
                    flags &= ~LO_FLAGS_DIRECT_IO;
                    continue;
                }

                throw new SyscallException("ioctl(LOOP_CONFIGURE)", error, path);
            }

            throw new SyscallException("ioctl(LOOP_CONFIGURE)", EBUSY, "/dev/loop-control");
        }
        finally
        {
            close(control);
        }
    }

    /// <summary>
    /// The identity (device, inode) of the file behind loop device <paramref name="deviceNumber"/>
    /// (a <c>st_dev</c> as <c>stat</c> reports it for a file on that device), or false when that is not
    /// a bound loop device.
    /// </summary>
    public static bool TryLoopBacking(ulong deviceNumber, out ulong backingDevice, out ulong backingInode)
    {
        backingDevice = 0;
        backingInode = 0;
        var (major, minor) = SplitDevice(deviceNumber);
        if (major != LoopMajor)
        {
            return false;
        }

        string? name = null;
        try
        {
            foreach (var line in File.ReadLines($"/sys/dev/block/{major}:{minor}/uevent"))
            {
                if (line.StartsWith("DEVNAME=", StringComparison.Ordinal))
                {
                    name = line[8..];
                }
            }
        }
        catch (IOException)
        {
            return false;
        }

        if (name is null || !name.StartsWith("loop", StringComparison.Ordinal) || name.Contains('/', StringComparison.Ordinal))
        {
            return false;
        }

        // Read-only, and the device is in use by a mount, so this open and close detach nothing.
        var fd = open("/dev/" + name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
        {
            return false;
        }

        try
        {
            LoopInfo64 info;
            if (ioctl_ptr(fd, LOOP_GET_STATUS64, &info) != 0)
            {
                return false;
            }

            backingDevice = info.Device;
            backingInode = info.Inode;
            return true;
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Detaches a loop device by path (LOOP_CLR_FD); with autoclear set this only marks it, the last close detaches.</summary>
    public static bool TryDetachLoop(string devicePath)
    {
        var fd = open(devicePath, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
        {
            return false;
        }

        try
        {
            return ioctl_value(fd, LOOP_CLR_FD, 0) == 0;
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Loop devices whose backing file is <paramref name="file"/> (by its path, as the kernel prints it; "(deleted)" too).</summary>
    public static IReadOnlyList<string> LoopDevicesBackedBy(string file)
    {
        var found = new List<string>();
        if (!Directory.Exists("/sys/block"))
        {
            return found;
        }

        foreach (var device in Directory.EnumerateDirectories("/sys/block", "loop*"))
        {
            try
            {
                var backing = File.ReadAllText(Path.Combine(device, "loop", "backing_file")).TrimEnd('\n');
                if (backing == file || backing == file + " (deleted)")
                {
                    found.Add("/dev/" + Path.GetFileName(device));
                }
            }
            catch (IOException)
            {
                // Not bound (no loop/ directory), or gone meanwhile.
            }
        }

        return found;
    }

    /// <summary>fstatvfs(3) for callers without unsafe code (a file system's size, free blocks and inodes).</summary>
    public static bool TryStatVfs(int fd, out Fuse.StatVfs stat)
    {
        Fuse.StatVfs result;
        var ok = fstatvfs(fd, &result) == 0;
        stat = result;
        return ok;
    }

    /// <summary>glibc's gnu_dev_major/gnu_dev_minor of a <c>dev_t</c>.</summary>
    public static (uint Major, uint Minor) SplitDevice(ulong device) =>
        ((uint)(((device >> 32) & 0xfffff000) | ((device >> 8) & 0xfff)), (uint)(((device >> 12) & 0xffffff00) | (device & 0xff)));

    /// <summary>glibc's gnu_dev_makedev.</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        (((ulong)major & 0xfffff000) << 32) | (((ulong)major & 0xfff) << 8) | (((ulong)minor & 0xffffff00) << 12) | ((ulong)minor & 0xff);

    /// <summary><c>struct loop_info64</c> (linux/loop.h, 232 bytes; layout checked by Hive.Interop.Tests).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct LoopInfo64
    {
        public ulong Device;
        public ulong Inode;
        public ulong Rdevice;
        public ulong Offset;
        public ulong SizeLimit;
        public uint Number;
        public uint EncryptType;
        public uint EncryptKeySize;
        public uint Flags;
        public fixed byte FileName[64];
        public fixed byte CryptName[64];
        public fixed byte EncryptKey[32];
        public fixed ulong Init[2];
    }

    /// <summary><c>struct loop_config</c> (linux/loop.h, 304 bytes), the argument of LOOP_CONFIGURE.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct LoopConfig
    {
        public uint Fd;
        public uint BlockSize;
        public LoopInfo64 Info;
        public fixed ulong Reserved[8];
    }
}
