using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using Hive.Interop;
using Hive.Interop.Fuse;
using Hive.Policy.Fs;
using Hive.SbxFuse.Audit;
using Hive.SbxFuse.Backing;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// What every FUSE operation does: decide by ACL on the logical path (the mount point inside the
/// sandbox + the path FUSE hands us, which the kernel has already resolved), perform it on the
/// backing tree through descriptors, record it, and return 0/bytes or a negative errno.
/// Denied → EACCES, writes under read-only → EROFS, an operation the audit log cannot record → EIO.
/// </summary>
internal sealed unsafe class GovernedFileSystem(BackingTree tree, AuditLog audit, string mount, AclPolicy policy, Artifacts artifacts)
{
    private volatile AclPolicy _policy = policy;
    private readonly WriteBehind _writeBehind = new();

    /// <summary>What we know about each open handle (keyed by its backing descriptor).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, OpenFile> _open = new();

    /// <summary>Counters for the control socket's stats.</summary>
    public FsCounters Counters { get; } = new();

    public int OpenHandles => _open.Count;

    /// <summary>Admission of an operation (the sandbox's event budget): false = refuse it with EDQUOT before doing anything.</summary>
    public bool Admit() => audit.Admit();

    /// <summary>fsync of every open file (a graceful drain): returns how many were flushed.</summary>
    public int FlushAll()
    {
        var flushed = 0;
        foreach (var fd in _open.Keys)
        {
            if (Libc.fsync(fd) == 0)
            {
                flushed++;
            }
        }

        audit.Sync();
        return flushed;
    }

    public AclPolicy Policy => _policy;

    /// <summary>
    /// New rules (hot reload), then everything the kernel caches is made to ask again, so that every
    /// operation after this returns is decided by them and recorded — none is served from a cache
    /// filled under the old rules:
    /// <list type="bullet">
    /// <item>names and attributes looked up by path: <c>FUSE_NOTIFY_INC_EPOCH</c> (Linux 6.16) makes
    /// every cached entry stale at once, so the next use of any name is a LOOKUP (our getattr, decided);</item>
    /// <item>open files (also those mapped with mmap, which hold their handle): their page cache and
    /// attributes are dropped (<c>FUSE_NOTIFY_INVAL_INODE</c>), so the next read(2) or page fault is a
    /// READ and the next fstat(2) a GETATTR on the handle — both decided by the new rules.</item>
    /// </list>
    /// Both notifications go from this (control) thread, never from a request's worker thread: an
    /// inode invalidation waits for pages under I/O, which a worker may be serving.
    /// Not reached: attributes of an inode held only by an O_PATH descriptor or a working directory
    /// (no handle of ours, no name walked) stay cached until the attribute timeout (60 s; 0 for a
    /// shared workspace) — what they show is metadata (mode, size, times), never content.
    /// </summary>
    public (bool Epoch, int Inodes) ReplacePolicy(AclPolicy policy)
    {
        _policy = policy;
        var epoch = KernelChannel.IncrementEpoch() == 0;
        var inodes = 0;
        foreach (var file in _open.Values)
        {
            if (file.NodeId != 0 && KernelChannel.InvalidateInode(file.NodeId) == 0)
            {
                inodes++;
            }
        }

        return (epoch, inodes);
    }

    /// <summary>A CREATE reply went out (KernelChannel): the kernel's node id of the new handle's inode.</summary>
    public void Created(ulong fh, ulong nodeId)
    {
        if (_open.TryGetValue((int)fh, out var file))
        {
            file.NodeId = nodeId;
        }
    }

    public string Logical(string fusePath) => fusePath == "/" ? mount : mount == "/" ? fusePath : mount + fusePath;

    /// <summary>
    /// The path of a handle's file: libfuse passes none for operations on handles (nullpath_ok), so
    /// we keep it per handle, current across renames. An unknown handle gets "" — denied by every policy.
    /// </summary>
    private string HandlePath(string? path, FuseFileInfo* fi) =>
        path is not null ? Logical(path) : fi is not null && _open.TryGetValue((int)fi->Fh, out var f) ? f.Logical : string.Empty;

    /// <summary>
    /// The entry the current request of this worker thread has just made (create, mkdir, symlink).
    /// libfuse's high-level API follows each of those, inside the same request, with a getattr of the
    /// new entry to answer the kernel; that is not an operation of the agent's (the kernel gets the
    /// attributes with the CREATE/MKDIR/SYMLINK reply), so it is answered from here: no second
    /// lookup, no second event. Only the very next getattr on this thread can take it.
    /// </summary>
    [ThreadStatic]
    private static JustMade t_justMade;

    private struct JustMade
    {
        public string? Path;
        public ulong Fh;
        public Stat Stat;
    }

    private static void RememberMade(string path, ulong fh, in Stat stat) => t_justMade = new JustMade { Path = path, Fh = fh, Stat = stat };

    private static bool TakeJustMade(string? path, FuseFileInfo* fi, Stat* stat)
    {
        if (t_justMade.Path is null)
        {
            return false;
        }

        var made = t_justMade;
        t_justMade = default;
        if (path != made.Path || (fi is null ? 0 : fi->Fh) != made.Fh)
        {
            return false;
        }

        *stat = made.Stat;
        return true;
    }

    public int Getattr(string? path, Stat* stat, FuseFileInfo* fi)
    {
        if (TakeJustMade(path, fi, stat))
        {
            return 0;
        }

        var start = Stopwatch.GetTimestamp();
        if (fi is not null && fi->Fh != 0)
        {
            var logicalPath = HandlePath(path, fi);
            var access = logicalPath.Length == 0 ? Access.Deny : _policy.Decide(logicalPath);
            if (access == Access.Deny)
            {
                return Done("getattr", logicalPath, "deny", -Libc.EACCES, 0, start);
            }

            return Done("getattr", logicalPath, "allow", Libc.fstat((int)fi->Fh, stat) == 0 ? 0 : -Errno(), 0, start);
        }

        path ??= "/";
        if (Deny(path, write: false, out var logical, out var decision) is { } denied)
        {
            return Done("getattr", logical, decision, denied, 0, start);
        }

        var (fd, name, error) = tree.Parent(path);
        if (error != 0)
        {
            return Done("getattr", logical, decision, error, 0, start);
        }

        var rc = Libc.fstatat(fd, name, stat, Libc.AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -Errno();
        tree.Release(fd);
        return Done("getattr", logical, decision, rc, 0, start);
    }

    public int Readlink(string path, byte* buffer, nuint size)
    {
        var b = (nint)buffer;
        return AtRead("readlink", path, write: false, (fd, name) =>
        {
            var n = Libc.readlinkat(fd, name, (byte*)b, size - 1);
            if (n < 0)
            {
                return -Errno();
            }

            ((byte*)b)[n] = 0;
            return 0;
        });
    }

    /// <summary>
    /// Set-user/group-ID bits are never stored: the backing files are owned by root on the host, and a
    /// set-uid root binary planted by an agent must not exist there, whatever the host does with it.
    /// </summary>
    private const uint PermissionBits = 0x1ff | 0x200; // rwxrwxrwx + sticky

    /// <summary>
    /// Device nodes, FIFOs and sockets are never made in a workspace (libfuse makes regular files
    /// with create): a device node would be a door to the host's devices wherever the backing
    /// directory is used without <c>nodev</c>, and a FIFO left in it blocks any host tool that reads
    /// it. Refused with EPERM — as a decision, on record (without this callback the kernel would get
    /// ENOSYS from libfuse and nothing would be recorded).
    /// </summary>
    public int Mknod(string path, uint mode)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = Logical(path);
        var type = (mode & 0xF000) switch
        {
            0x2000 => "character device",
            0x6000 => "block device",
            0x1000 => "fifo",
            0xC000 => "socket",
            _ => "node",
        };
        return Done("mknod", logical, "deny", -Libc.EPERM, 0, start, type);
    }

    public int Mkdir(string path, uint mode) => AtWrite("mkdir", path, (fd, name) => Libc.mkdirat(fd, name, mode & PermissionBits), remember: true);

    public int Unlink(string path) => AtWrite("unlink", path, (fd, name) => Libc.unlinkat(fd, name, 0));

    public int Rmdir(string path) => AtWrite("rmdir", path, (fd, name) => Libc.unlinkat(fd, name, Libc.AT_REMOVEDIR));

    public int Chmod(string path, uint mode) => AtWrite("chmod", path, (fd, name) => Libc.fchmodat(fd, name, mode & PermissionBits, 0));

    public int Chown(string path, uint uid, uint gid) => AtWrite("chown", path, (fd, name) => Libc.fchownat(fd, name, uid, gid, Libc.AT_SYMLINK_NOFOLLOW));

    public int Utimens(string path, Timespec* times)
    {
        var copy = stackalloc Timespec[2];
        copy[0] = times[0];
        copy[1] = times[1];
        var captured = (nint)copy;
        return AtWrite("utimens", path, (fd, name) => Libc.utimensat(fd, name, (Timespec*)captured, Libc.AT_SYMLINK_NOFOLLOW));
    }

    public int Symlink(string target, string path) =>
        AtWrite("symlink", path, (fd, name) => Libc.symlinkat(target, fd, name), target, remember: true);

    /// <summary>renameat2(2) flag: swap the two entries.</summary>
    private const uint RenameExchange = 2;

    /// <summary>
    /// A rename is decided three ways: both names must be writable (the entries themselves), and
    /// when a directory moves (or is swapped, with RENAME_EXCHANGE), the rules must decide
    /// everything beneath it exactly as before (<see cref="AclPolicy.DecidesAlike"/>) — otherwise
    /// <c>mv /w/private /w/x</c> would take <c>/w/private/*.txt</c> out of its deny rule, and a
    /// read-only <c>/w/cfg/*.yaml</c> could be moved out, changed and moved back.
    /// </summary>
    /// <remarks>
    /// Such a rename answers EXDEV, as a rename across file systems does: <c>mv</c> and most
    /// programs then fall back to copying and deleting entry by entry, and each of those operations
    /// is decided by the rules like any other (a denied file is neither listed nor readable, a
    /// read-only one cannot be removed), so the fallback cannot do what the rename would have.
    /// The check runs only on renames (never on the operations that dominate, read/write/lookup),
    /// and the type of the entries is looked at only when the rules say the decisions would differ:
    /// a plain file has nothing beneath it. The kernel holds both parent directories locked for the
    /// rename, so nothing done through this mount can swap the entry between that look and the
    /// rename; another mount of a shared workspace could, but a writer there already has its own
    /// rules for the same files.
    /// </remarks>
    public int Rename(string from, string to, uint flags)
    {
        var start = Stopwatch.GetTimestamp();
        var logicalTo = Logical(to);
        var policy = _policy;
        var denied = Deny(from, write: true, out var logical, out var decision);
        if (denied is null)
        {
            denied = Deny(to, write: true, out _, out decision);
        }

        if (denied is { } rejected)
        {
            return Done("rename", logical, decision, rejected, 0, start, logicalTo);
        }

        var exchange = (flags & RenameExchange) != 0;
        var (fromFd, fromName, e1) = tree.Parent(from);
        var (toFd, toName, e2) = tree.Parent(to);
        var rc = e1 != 0 ? e1 : e2;
        if (rc == 0 && !policy.DecidesAlike(logical, logicalTo, out _))
        {
            rc = MovesDirectory(fromFd, fromName, toFd, toName, exchange);
            if (rc == -Libc.EXDEV)
            {
                decision = "deny";
            }
        }

        if (rc == 0)
        {
            rc = Libc.renameat2(fromFd, fromName, toFd, toName, flags) == 0 ? 0 : -Errno();
        }

        tree.Release(fromFd);
        tree.Release(toFd);
        if (rc == 0)
        {
            Renamed(from, to, exchange);
        }

        rc = Done("rename", logical, decision, rc, 0, start, logicalTo);
        return rc == 0 && !exchange && !artifacts.Renamed(logical, logicalTo) ? -Libc.EIO : rc;
    }

    /// <summary>
    /// -EXDEV when the rename would move a directory (the source, or with RENAME_EXCHANGE either
    /// side); 0 when only non-directories move; the error of looking at an entry (ENOENT, ...) as is,
    /// never a rename of something not looked at.
    /// </summary>
    private static int MovesDirectory(int fromFd, string fromName, int toFd, string toName, bool exchange)
    {
        var stat = default(Stat);
        if (Libc.fstatat(fromFd, fromName, &stat, Libc.AT_SYMLINK_NOFOLLOW) != 0)
        {
            return -Errno();
        }

        if ((stat.Mode & 0xF000) == 0x4000)
        {
            return -Libc.EXDEV;
        }

        if (!exchange)
        {
            return 0;
        }

        if (Libc.fstatat(toFd, toName, &stat, Libc.AT_SYMLINK_NOFOLLOW) != 0)
        {
            return -Errno();
        }

        return (stat.Mode & 0xF000) == 0x4000 ? -Libc.EXDEV : 0;
    }

    public int Link(string from, string to)
    {
        var start = Stopwatch.GetTimestamp();
        var logicalFrom = Logical(from);

        // A hard link makes the same data reachable under a new name: both names must be writable.
        // That is also all a rename check would ask: only non-directories can be linked, so nothing
        // lies beneath either name, and two writable names decide the file alike.
        var denied = Deny(from, write: true, out _, out var decision);
        if (denied is null)
        {
            denied = Deny(to, write: true, out _, out decision);
        }

        if (denied is { } rejected)
        {
            return Done("link", Logical(to), decision, rejected, 0, start, logicalFrom);
        }

        var (fromFd, fromName, e1) = tree.Parent(from);
        var (toFd, toName, e2) = tree.Parent(to);
        var rc = e1 != 0 ? e1 : e2 != 0 ? e2 : Libc.linkat(fromFd, fromName, toFd, toName, 0) == 0 ? 0 : -Errno();
        tree.Release(fromFd);
        tree.Release(toFd);
        return Done("link", Logical(to), decision, rc, 0, start, logicalFrom);
    }

    public int Truncate(string? path, long size, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = HandlePath(path, fi);
        if (DenyLogical(logical, write: true, out var decision) is { } denied)
        {
            return Done("truncate", logical, decision, denied, 0, start);
        }

        int rc;
        if (fi is not null && fi->Fh != 0)
        {
            rc = Libc.ftruncate((int)fi->Fh, size) == 0 ? 0 : -Errno();
            MarkWritten(fi);
        }
        else if (path is null)
        {
            rc = -Libc.ENOENT;
        }
        else
        {
            var fd = tree.Open(path, Libc.O_WRONLY, 0);
            rc = fd < 0 ? fd : !ClearSetId(fd) ? -Libc.EIO : Libc.ftruncate(fd, size) == 0 ? 0 : -Errno();
            if (fd >= 0)
            {
                Libc.close(fd);
            }
        }

        return Done("truncate", logical, decision, rc, size, start);
    }

    public int Open(string path, FuseFileInfo* fi) => OpenOrCreate("open", path, fi->Flags, 0, fi);

    public int Create(string path, uint mode, FuseFileInfo* fi) => OpenOrCreate("create", path, fi->Flags | Libc.O_CREAT, mode & PermissionBits, fi);

    public int Read(string? path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = HandlePath(path, fi);

        // Re-checked per operation: a hot-reloaded rule applies to handles that are already open.
        if (logical.Length == 0 || _policy.Decide(logical) == Access.Deny)
        {
            return Done("read", logical, "deny", -Libc.EACCES, 0, start);
        }

        var n = Libc.pread((int)fi->Fh, buffer, size, offset);
        return Done("read", logical, "allow", n < 0 ? -Errno() : (int)n, Math.Max(0, n), start);
    }

    public int Write(string? path, byte* buffer, nuint size, long offset, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = HandlePath(path, fi);
        var access = logical.Length == 0 ? Access.Deny : _policy.Decide(logical);
        if (access != Access.ReadWrite)
        {
            return Done("write", logical, access.Name(), access == Access.Deny ? -Libc.EACCES : -Libc.EROFS, 0, start);
        }

        var n = Libc.pwrite((int)fi->Fh, buffer, size, offset);
        if (_open.TryGetValue((int)fi->Fh, out var file))
        {
            file.Written = true;
            if (n > 0)
            {
                _writeBehind.Wrote(file, offset, n);
            }
        }

        return Done("write", logical, "allow", n < 0 ? -Errno() : (int)n, Math.Max(0, n), start);
    }

    public int Fallocate(string? path, int mode, long offset, long length, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = HandlePath(path, fi);
        if (DenyLogical(logical, write: true, out var decision) is { } denied)
        {
            return Done("fallocate", logical, decision, denied, 0, start);
        }

        var rc = Libc.fallocate((int)fi->Fh, mode, offset, length) == 0 ? 0 : -Errno();
        MarkWritten(fi);
        return Done("fallocate", logical, decision, rc, length, start);
    }

    public int Statfs(StatVfs* stat) => Libc.fstatvfs(tree.RootFd, stat) == 0 ? 0 : -Errno();

    /// <summary>
    /// The last close of a handle. A file the agent wrote through this handle is recorded as an
    /// artifact (<see cref="Artifacts"/>: size and SHA-256 within bounded host work).
    /// </summary>
    public int Release(string? path, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var fd = (int)fi->Fh;
        _open.TryRemove(fd, out var file);
        var logical = path is not null ? Logical(path) : file?.Logical ?? mount;
        if (file is not null)
        {
            WriteBehind.Closing(file);
        }

        // The artifact record takes the descriptor over (a large file is hashed in the background).
        var recorded = true;
        if (file is { Written: true })
        {
            recorded = artifacts.Closed(fd, logical, file.Readable);
        }
        else
        {
            Libc.close(fd);
        }

        var rc = Done("release", logical, "allow", 0, 0, start);
        return recorded ? rc : -Libc.EIO;
    }

    public int Fsync(string? path, int datasync, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var rc = (datasync != 0 ? Libc.fdatasync((int)fi->Fh) : Libc.fsync((int)fi->Fh)) == 0 ? 0 : -Errno();
        rc = Done("fsync", HandlePath(path, fi), "allow", rc, 0, start);

        // What the agent made durable has its record durable too (the spool survives a host crash).
        return rc == 0 && !audit.Sync() ? -Libc.EIO : rc;
    }

    public int Getxattr(string path, string name, byte* value, nuint size) =>
        Xattr("getxattr", path, name, write: false, fd =>
        {
            var n = Libc.fgetxattr(fd, name, value, size);
            return n < 0 ? -Errno() : (int)n;
        });

    public int Listxattr(string path, byte* list, nuint size) =>
        Xattr("listxattr", path, null, write: false, fd =>
        {
            var n = Libc.flistxattr(fd, list, size);
            return n < 0 ? -Errno() : (int)n;
        });

    public int Setxattr(string path, string name, byte* value, nuint size, int flags) =>
        Xattr("setxattr", path, name, write: true, fd => Libc.fsetxattr(fd, name, value, size, flags) == 0 ? 0 : -Errno());

    public int Removexattr(string path, string name) =>
        Xattr("removexattr", path, name, write: true, fd => Libc.fremovexattr(fd, name) == 0 ? 0 : -Errno());

    /// <summary>
    /// Extended attributes, <c>user.*</c> only: the other namespaces (security, trusted, system ACLs)
    /// would let the agent change what the host enforces. Files and directories only; the entry is
    /// pinned with O_PATH, checked, and re-opened through its descriptor, so no symlink is followed.
    /// </summary>
    private int Xattr(string op, string path, string? name, bool write, Func<int, int> action)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write, out var logical, out var decision) is { } denied)
        {
            return Done(op, logical, decision, denied, 0, start, name);
        }

        if (name is not null && !name.StartsWith("user.", StringComparison.Ordinal))
        {
            // Reading one simply finds nothing (the kernel asks for security.capability before writes);
            // setting or removing one is refused.
            return write ? Done(op, logical, "deny", -Libc.EOPNOTSUPP, 0, start, name) : Done(op, logical, decision, -Libc.ENODATA, 0, start, name);
        }

        var pinned = tree.Open(path, Libc.O_PATH, 0);
        if (pinned < 0)
        {
            return Done(op, logical, decision, pinned, 0, start, name);
        }

        int rc;
        var stat = default(Stat);
        if (Libc.fstat(pinned, &stat) != 0)
        {
            rc = -Errno();
        }
        else if ((stat.Mode & 0xF000) is not 0x8000 and not 0x4000)
        {
            rc = write ? -Libc.EPERM : name is null ? 0 : -Libc.ENODATA;
        }
        else
        {
            // Re-open the pinned entry itself (a regular file or directory, checked above) for reading.
            var fd = Libc.openat(Libc.AT_FDCWD, "/proc/self/fd/" + pinned.ToString(System.Globalization.CultureInfo.InvariantCulture), Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0);
            rc = fd < 0 ? -Errno() : action(fd);
            if (fd >= 0)
            {
                Libc.close(fd);
            }
        }

        Libc.close(pinned);
        return Done(op, logical, decision, rc, Math.Max(0, rc), start, name);
    }

    /// <summary>Open handles follow their file (or a parent directory) to its new name, so later decisions use the current path.</summary>
    private void Renamed(string from, string to, bool exchange)
    {
        foreach (var file in _open.Values)
        {
            var current = file.FusePath;
            var moved = Moved(current, from, to) ?? (exchange ? Moved(current, to, from) : null);
            if (moved is not null)
            {
                file.FusePath = moved;
                file.Logical = Logical(moved);
            }
        }

        static string? Moved(string path, string from, string to) =>
            path == from ? to : path.StartsWith(from + "/", StringComparison.Ordinal) ? to + path[from.Length..] : null;
    }

    public int Opendir(string path, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write: false, out var logical, out var decision) is { } denied)
        {
            return Done("opendir", logical, decision, denied, 0, start);
        }

        var fd = tree.Open(path, Libc.O_RDONLY | Libc.O_DIRECTORY, 0);
        if (fd >= 0)
        {
            fi->Fh = (ulong)fd;
            _open[fd] = new OpenFile(fd, path, logical) { NodeId = KernelChannel.OpenedNodeId };
        }

        return Done("opendir", logical, decision, fd < 0 ? fd : 0, 0, start);
    }

    public int Releasedir(FuseFileInfo* fi)
    {
        _open.TryRemove((int)fi->Fh, out _);
        Libc.close((int)fi->Fh);
        return 0;
    }

    private void MarkWritten(FuseFileInfo* fi)
    {
        if (_open.TryGetValue((int)fi->Fh, out var file))
        {
            file.Written = true;
        }
    }

    public int Readdir(string? path, void* buffer, delegate* unmanaged<void*, byte*, Stat*, long, int, int> filler, bool plus, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var logical = HandlePath(path, fi);
        if (DenyLogical(logical, write: false, out var decision) is { } denied)
        {
            return Done("readdir", logical, decision, denied, 0, start);
        }

        // A duplicate of the handle's descriptor, rewound: libfuse asks for the whole listing at once.
        var fd = Libc.dup((int)fi->Fh);
        if (fd < 0)
        {
            return Done("readdir", logical, decision, -Errno(), 0, start);
        }

        var dir = Libc.fdopendir(fd);
        if (dir is null)
        {
            var e = -Errno();
            Libc.close(fd);
            return Done("readdir", logical, decision, e, 0, start);
        }

        Libc.rewinddir(dir);

        long count = 0;
        var policy = _policy;
        var stat = default(Stat);
        try
        {
            byte* entry;
            while ((entry = Libc.readdir(dir)) is not null)
            {
                var name = entry + 19;
                var dot = name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
                if (!dot)
                {
                    var nameString = Marshal.PtrToStringUTF8((nint)name) ?? string.Empty;
                    if (policy.Decide(logical == "/" ? "/" + nameString : logical + "/" + nameString) == Access.Deny)
                    {
                        continue; // denied entries are not listed
                    }
                }

                // The entry's type (and with readdirplus its attributes) saves the kernel a lookup per entry.
                var fill = 0;
                if (plus && !dot && Libc.fstatat(fd, name, &stat, Libc.AT_SYMLINK_NOFOLLOW) == 0)
                {
                    IdMap.MapOut(&stat);
                    fill = FillDirPlus;
                }
                else
                {
                    stat = default;
                    stat.Ino = *(ulong*)entry;
                    stat.Mode = (uint)entry[18] << 12;
                }

                filler(buffer, name, &stat, 0, fill);
                count++;
            }
        }
        finally
        {
            Libc.closedir(dir);
        }

        return Done("readdir", logical, decision, 0, count, start);
    }

    private const int FillDirPlus = 2;

    /// <summary>The modes, as the caller (CallerIdentity): root passes everything but execute on a file without any x bit.</summary>
    public int CheckAccess(string path, int mask) =>
        AtRead("access", path, write: (mask & 2) != 0, (fd, name) => Libc.faccessat(fd, name, mask, Libc.AT_EACCESS | Libc.AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -Errno());

    /// <summary>
    /// An operation on an entry, after the ACL decision: <paramref name="action"/> gets its parent's
    /// descriptor and its name, and returns 0 or a negative errno.
    /// </summary>
    private int AtRead(string op, string path, bool write, Func<int, string, int> action)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write, out var logical, out var decision) is { } denied)
        {
            return Done(op, logical, decision, denied, 0, start);
        }

        var (fd, name, error) = tree.Parent(path);
        if (error != 0)
        {
            return Done(op, logical, decision, error, 0, start);
        }

        var rc = action(fd, name);
        tree.Release(fd);
        return Done(op, logical, decision, rc, 0, start);
    }

    private int OpenOrCreate(string op, string path, int flags, uint mode, FuseFileInfo* fi)
    {
        var start = Stopwatch.GetTimestamp();
        var write = (flags & Libc.O_ACCMODE) != Libc.O_RDONLY || (flags & (Libc.O_CREAT | Libc.O_TRUNC)) != 0;
        if (Deny(path, write, out var logical, out var decision) is { } denied)
        {
            return Done(op, logical, decision, denied, 0, start);
        }

        // A file the agent creates write-only is opened read-write underneath, so its artifact hash at
        // close reads through the same descriptor instead of opening the file again.
        var writeOnly = (flags & Libc.O_ACCMODE) == Libc.O_WRONLY;
        var readable = !writeOnly;
        var fd = op == "create" && writeOnly ? tree.Open(path, ((flags & ~Libc.O_ACCMODE) | Libc.O_RDWR) & ~Libc.O_NOFOLLOW, mode) : -Libc.EACCES;
        if (fd >= 0)
        {
            readable = true;
        }
        else
        {
            // Also when the file already existed and this caller may write it but not read it.
            fd = tree.Open(path, flags & ~Libc.O_NOFOLLOW, mode);
        }

        if (fd >= 0 && write && op == "open" && !ClearSetId(fd))
        {
            Libc.close(fd);
            fd = -Libc.EIO; // fail closed: a file opened for writing never keeps a set-ID bit
        }

        var created = default(Stat);
        var remembered = fd >= 0 && op == "create" && Libc.fstat(fd, &created) == 0;

        if (fd >= 0)
        {
            fi->Fh = (ulong)fd;
            // The kernel's node id: an OPEN request carries it; a CREATE learns it with its reply (Created).
            _open[fd] = new OpenFile(fd, path, logical) { Written = (flags & Libc.O_TRUNC) != 0 || op == "create", Readable = readable, NodeId = KernelChannel.OpenedNodeId };

            // Appends bypass the page cache: through the cache the kernel may split one write(2) at a
            // page boundary into two requests, and a second mount of the same workspace (or any other
            // writer) could append in between. Direct, each write is one atomic append on the backing file.
            //
            // Write-only handles bypass it too: nothing reads through them (not even mmap, which needs
            // read access), and direct writes go from the agent's buffer to us in one copy instead of
            // first into page cache the kernel keeps for the FUSE file. Readers of the file see the
            // new data: the kernel drops the written range from its cache after a direct write, even
            // for handles that are already open (KernelCachingTests).
            if ((flags & Libc.O_APPEND) != 0 || writeOnly)
            {
                fi->Bits |= FuseFileInfo.DirectIo;
            }
        }

        var rc = Done(op, logical, decision, fd < 0 ? fd : 0, 0, start);
        if (rc == 0 && remembered)
        {
            RememberMade(path, (ulong)fd, created); // only once the operation is on record
        }

        return rc;
    }

    /// <summary>
    /// A file opened for writing loses set-user-ID and set-group-ID (SbxFuse never stores them, but
    /// the backing directory may hold one from elsewhere): the kernel leaves this to us (KernelChannel).
    /// False when they are there and could not be cleared.
    /// </summary>
    private static bool ClearSetId(int fd)
    {
        var stat = default(Stat);
        if (Libc.fstat(fd, &stat) != 0)
        {
            return false;
        }

        if ((stat.Mode & 0xF000) != 0x8000 || (stat.Mode & 0xC00) == 0)
        {
            return true;
        }

        // As SbxFuse: a caller allowed to write the file need not own it (the kernel would clear them with privilege too).
        var mode = stat.Mode & PermissionBits;
        return CallerIdentity.AsSelf(() => Libc.fchmod(fd, mode) == 0);
    }

    private int AtWrite(string op, string path, Func<int, string, int> action, string? target = null, bool remember = false)
    {
        var start = Stopwatch.GetTimestamp();
        if (Deny(path, write: true, out var logical, out var decision) is { } denied)
        {
            return Done(op, logical, decision, denied, 0, start, target);
        }

        var (fd, name, error) = tree.Parent(path);
        if (error != 0)
        {
            return Done(op, logical, decision, error, 0, start, target);
        }

        var rc = action(fd, name) == 0 ? 0 : -Errno();
        var made = default(Stat);
        var remembered = rc == 0 && remember && Libc.fstatat(fd, name, &made, Libc.AT_SYMLINK_NOFOLLOW) == 0;
        tree.Release(fd);
        rc = Done(op, logical, decision, rc, 0, start, target);
        if (rc == 0 && remembered)
        {
            RememberMade(path, 0, made); // only once the operation is on record
        }

        return rc;
    }

    /// <summary>Null when allowed; otherwise the negative errno to return.</summary>
    private int? Deny(string path, bool write, out string logical, out string decision)
    {
        logical = Logical(path);
        return DenyLogical(logical, write, out decision);
    }

    private int? DenyLogical(string logical, bool write, out string decision)
    {
        var access = logical.Length == 0 ? Access.Deny : _policy.Decide(logical);
        switch (access)
        {
            case Access.Deny:
                decision = "deny";
                return -Libc.EACCES;
            case Access.ReadOnly when write:
                decision = "deny-ro";
                return -Libc.EROFS;
            default:
                decision = "allow";
                return null;
        }
    }

    private int Done(string op, string logical, string decision, int result, long bytes, long start, string? target = null)
    {
        var micros = (long)Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        var recorded = audit.TryRecord(new FsEvent(op, logical, decision, bytes, micros, result < 0 ? -result : 0, target));
        Counters.Count(decision, result < 0, bytes, op);
        return recorded ? result : -Libc.EIO;
    }

    private static int Errno() => Marshal.GetLastPInvokeError();
}

/// <summary>An open handle: the path it was opened under and whether the agent wrote through it.</summary>
internal sealed class OpenFile(int fd, string fusePath, string logical)
{
    /// <summary>The backing descriptor (also the handle's key).</summary>
    public int Fd => fd;

    /// <summary>The path inside the mount, kept current across renames of the file or a parent.</summary>
    public volatile string FusePath = fusePath;

    public volatile string Logical = logical;

    public volatile bool Written;

    /// <summary>Whether the backing descriptor can be read (the artifact hash reads through it).</summary>
    public bool Readable { get; init; }

    /// <summary>The kernel's node id of the file (0 until known): what an ACL change invalidates.</summary>
    public ulong NodeId { get; set; }

    // WriteBehind's state, under the object's lock: the range written since the last send, whether
    // the handle waits in its queue, whether a send is using the descriptor, whether it is closing.
    public long PendingStart;
    public long PendingEnd;
    public bool Queued;
    public bool Sending;
    public bool Closed;
}

/// <summary>Totals since start, for the control socket.</summary>
internal sealed class FsCounters
{
    private long _operations;
    private long _denied;
    private long _errors;
    private long _bytesRead;
    private long _bytesWritten;

    public long Operations => Interlocked.Read(ref _operations);

    public long Denied => Interlocked.Read(ref _denied);

    public long Errors => Interlocked.Read(ref _errors);

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public void Count(string decision, bool failed, long bytes, string op)
    {
        Interlocked.Increment(ref _operations);
        if (decision != "allow")
        {
            Interlocked.Increment(ref _denied);
        }
        else if (failed)
        {
            Interlocked.Increment(ref _errors);
        }

        if (op == "read")
        {
            Interlocked.Add(ref _bytesRead, bytes);
        }
        else if (op == "write")
        {
            Interlocked.Add(ref _bytesWritten, bytes);
        }
    }
}
