using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Hive.Interop;
using Hive.Interop.Fuse;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// libfuse's reads of requests and writes of replies on /dev/fuse, done here so the INIT reply can
/// accept one capability libfuse 3.14 does not know: <c>FUSE_HANDLE_KILLPRIV_V2</c> (Linux 5.11).
/// Without it the kernel asks for <c>security.capability</c> before every write(2) on a cached
/// handle (write-only handles are direct_io and never ask); with it, only before the first one —
/// because only a file system that clears set-user-ID, set-group-ID
/// and capabilities itself may skip that check. SbxFuse never stores any of the three (modes are
/// masked, only <c>user.*</c> xattrs can be set, an existing set-ID bit is cleared when a file is
/// opened for writing), so it can take that responsibility.
/// Written by hand: no libfuse version in our registry exposes the flag.
/// </summary>
internal static unsafe class KernelChannel
{
    private const uint OpcodeInit = 26;
    private const uint HandleKillprivV2 = 1u << 28;

    private static long _initUnique = -1;
    private static uint _kernelFlags;

    /// <summary>Whether the kernel offered and was told FUSE_HANDLE_KILLPRIV_V2 (for the log and the tests).</summary>
    public static bool KillprivV2 { get; private set; }

    /// <summary>Routes the session's device I/O through this class. Call after mounting, before the loop.</summary>
    public static bool Install(void* session)
    {
        var io = new FuseCustomIo { Read = &Read, Writev = &Writev };
        return LibFuse.fuse_session_custom_io(session, &io, LibFuse.fuse_session_fd(session)) == 0;
    }

    /// <summary>One request, as libfuse's own loop would read it; errno is what read(2) set.</summary>
    [UnmanagedCallersOnly]
    private static nint Read(int fd, byte* buffer, nuint length, void* userData)
    {
        var n = Libc.read(fd, buffer, length);
        if (n < 0)
        {
            Marshal.SetLastSystemError(Marshal.GetLastPInvokeError());
            return n;
        }

        // fuse_in_header: len u32, opcode u32, unique u64, nodeid u64, uid, gid, pid, padding (40 bytes);
        // then fuse_init_in: major, minor, max_readahead, flags.
        if (n >= 56 && BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(buffer + 4, 4)) == OpcodeInit)
        {
            _kernelFlags = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(buffer + 52, 4));
            Volatile.Write(ref _initUnique, (long)BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(buffer + 8, 8)));
        }

        return n;
    }

    /// <summary>One reply; the INIT reply gains FUSE_HANDLE_KILLPRIV_V2 when the kernel offered it.</summary>
    [UnmanagedCallersOnly]
    private static nint Writev(int fd, Iovec* iov, int count, void* userData)
    {
        // fuse_out_header: len u32, error i32, unique u64; the INIT reply's fuse_init_out follows
        // in the next vector: major, minor, max_readahead, flags.
        if (Volatile.Read(ref _initUnique) >= 0 && count >= 2 && iov[0].Length >= 16 && iov[1].Length >= 16
            && (long)BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(iov[0].Base + 8, 8)) == _initUnique
            && BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(iov[0].Base + 4, 4)) == 0)
        {
            _initUnique = -1;
            if ((_kernelFlags & HandleKillprivV2) != 0)
            {
                var flags = new Span<byte>(iov[1].Base + 12, 4);
                BinaryPrimitives.WriteUInt32LittleEndian(flags, BinaryPrimitives.ReadUInt32LittleEndian(flags) | HandleKillprivV2);
                KillprivV2 = true;
            }
        }

        var n = Libc.writev(fd, iov, count);
        if (n < 0)
        {
            Marshal.SetLastSystemError(Marshal.GetLastPInvokeError());
        }

        return n;
    }
}
