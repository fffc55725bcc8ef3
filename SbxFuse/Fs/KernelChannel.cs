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
/// <para>
/// It also keeps what the ACL hot reload needs to reach the kernel's caches (see
/// <see cref="GovernedFileSystem.ReplacePolicy"/>): the kernel's node id of every handle a request
/// opens (the high-level API hands callbacks paths, never node ids), and the device descriptor for
/// <c>FUSE_NOTIFY_INC_EPOCH</c> (Linux 6.16), which libfuse 3.14 does not know either.
/// </para>
/// </summary>
internal static unsafe class KernelChannel
{
    private const uint OpcodeOpen = 14;
    private const uint OpcodeInit = 26;
    private const uint OpcodeOpendir = 27;
    private const uint OpcodeCreate = 35;
    private const uint HandleKillprivV2 = 1u << 28;

    /// <summary>fuse_notify_code FUSE_NOTIFY_INC_EPOCH (include/uapi/linux/fuse.h, protocol 7.44).</summary>
    private const int NotifyIncEpoch = 8;

    /// <summary>sizeof(struct fuse_entry_out): a CREATE reply is this, then struct fuse_open_out (fh first).</summary>
    private const int EntryOutSize = 128;

    private static long _initUnique = -1;
    private static uint _kernelFlags;
    private static void* _session;
    private static int _device = -1;

    // The request this worker thread is serving: libfuse reads a request, runs its callback and
    // writes the reply on one thread, so the header is at hand in the callback and in the reply.
    [ThreadStatic]
    private static uint t_opcode;

    [ThreadStatic]
    private static ulong t_nodeId;

    /// <summary>Whether the kernel offered and was told FUSE_HANDLE_KILLPRIV_V2 (for the log and the tests).</summary>
    public static bool KillprivV2 { get; private set; }

    /// <summary>Called with (fh, node id) as a CREATE reply goes out: the new inode's id is known only then.</summary>
    public static Action<ulong, ulong>? Created { get; set; }

    /// <summary>The node id the current OPEN or OPENDIR request of this thread opens; 0 in any other request.</summary>
    public static ulong OpenedNodeId => t_opcode is OpcodeOpen or OpcodeOpendir ? t_nodeId : 0;

    /// <summary>Routes the session's device I/O through this class. Call after mounting, before the loop.</summary>
    public static bool Install(void* session)
    {
        _session = session;
        _device = LibFuse.fuse_session_fd(session);
        var io = new FuseCustomIo { Read = &Read, Writev = &Writev };
        return LibFuse.fuse_session_custom_io(session, &io, _device) == 0;
    }

    /// <summary>The kernel drops the attributes and page cache of one inode (0, or a negative errno).</summary>
    public static int InvalidateInode(ulong nodeId) =>
        _session is null ? -Libc.EIO : LibFuse.fuse_lowlevel_notify_inval_inode(_session, nodeId, 0, 0);

    /// <summary>
    /// FUSE_NOTIFY_INC_EPOCH: every name the kernel has cached for this mount (positive or negative)
    /// becomes stale at once and is looked up again on its next use. 0, or a negative errno
    /// (-EINVAL on kernels before 6.16, which do not know the notification).
    /// </summary>
    public static int IncrementEpoch()
    {
        if (_device < 0)
        {
            return -Libc.EIO;
        }

        // A notification is a fuse_out_header alone: len, error = the notify code, unique = 0.
        var header = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(header, 4), 16);
        BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(header + 4, 4), NotifyIncEpoch);
        BinaryPrimitives.WriteUInt64LittleEndian(new Span<byte>(header + 8, 8), 0);
        var iov = new Iovec { Base = header, Length = 16 };
        return Libc.writev(_device, &iov, 1) == 16 ? 0 : -Marshal.GetLastPInvokeError();
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
        if (n >= 40)
        {
            t_opcode = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(buffer + 4, 4));
            t_nodeId = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(buffer + 16, 8));
        }

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

        // A CREATE reply: fuse_entry_out (node id first) then fuse_open_out (fh first).
        if (t_opcode == OpcodeCreate && count >= 2 && iov[0].Length >= 16 && iov[1].Length >= EntryOutSize + 16
            && BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(iov[0].Base + 4, 4)) == 0)
        {
            t_opcode = 0;
            Created?.Invoke(
                BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(iov[1].Base + EntryOutSize, 8)),
                BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(iov[1].Base, 8)));
        }

        var n = Libc.writev(fd, iov, count);
        if (n < 0)
        {
            Marshal.SetLastSystemError(Marshal.GetLastPInvokeError());
        }

        return n;
    }
}
