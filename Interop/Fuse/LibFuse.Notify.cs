using System.Runtime.InteropServices;

namespace Hive.Interop.Fuse;

/// <summary>Notifications from the file system to the kernel (libfuse's low-level API, usable with the high-level one's session).</summary>
public static unsafe partial class LibFuse
{
    /// <summary>
    /// FUSE_NOTIFY_INVAL_INODE: the kernel drops the inode's cached attributes and, for
    /// <paramref name="offset"/> ≥ 0, its page cache from there (<paramref name="length"/> ≤ 0: to the
    /// end) — pages mapped by mmap included, so the next access faults and reads through us again.
    /// Returns 0, or a negative errno (-ENOENT when the kernel does not know the node).
    /// </summary>
    [LibraryImport(Library, EntryPoint = "fuse_lowlevel_notify_inval_inode")]
    public static partial int fuse_lowlevel_notify_inval_inode(void* session, ulong nodeId, long offset, long length);
}
