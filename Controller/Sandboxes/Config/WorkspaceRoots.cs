using System.Runtime.InteropServices;
using Hive.Controller.Api;
using Hive.Controller.Hosting;
using Hive.Interop;

namespace Hive.Controller.Sandboxes.Config;

/// <summary>A workspace's backing directory as recorded in the spec: where it is, what it lies beneath, which directory it is.</summary>
internal sealed record ResolvedRoot(string Path, string Beneath, ulong Device, ulong Inode);

/// <summary>
/// Where a workspace's files may live. An explicit <c>root</c> (a shared workspace) must lie inside
/// a directory the operator allowed (<c>--fs-roots</c>), and is resolved there without following any
/// link: a link planted by whoever can write a parent directory must not lead it anywhere else.
/// Roots of different sandboxes are either the same directory (shared) or unrelated: a root inside
/// another one would let the sandbox that owns the outer one replace the inner one's directory, and
/// the recorded identity (device, inode) that every SbxFuse start checks would then refuse it —
/// better refused at create, with a reason. Hive's own directories are never a root, nor inside or
/// around one.
/// </summary>
internal sealed class WorkspaceRoots(ControllerOptions options)
{
    private const uint DirectoryMode = 0x1ed; // 0755

    /// <summary>
    /// Checks an explicit root and, with <paramref name="create"/>, creates what is missing of it.
    /// Without, a missing tail is fine (it will be created): what exists must be directories, no links.
    /// </summary>
    public ResolvedRoot Resolve(string root, bool create)
    {
        if (options.FsRoots.Count == 0)
        {
            throw ApiException.BadRequest($"fs root '{root}' is not allowed: this Controller allows no shared workspace roots (start it with --fs-roots DIR or HIVE_FS_ROOTS)");
        }

        var allowed = options.FsRoots.Where(a => root.StartsWith(a + "/", StringComparison.Ordinal)).MaxBy(a => a.Length)
            ?? throw ApiException.BadRequest($"fs root '{root}' is not allowed: it must lie inside one of {string.Join(", ", options.FsRoots)}");
        var relative = root[(allowed.Length + 1)..];
        var beneathFd = Libc.openat2(Libc.AT_FDCWD, allowed, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, 0);
        if (beneathFd < 0)
        {
            throw ApiException.BadRequest($"fs root '{root}' is not allowed: the allowed directory {allowed} cannot be opened ({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())})");
        }

        try
        {
            var beneath = RealPath(beneathFd) ?? allowed;
            var fd = Libc.OpenDirectoryBeneath(beneathFd, relative, create, DirectoryMode, out var failedAt);
            if (fd == -Libc.ENOENT && !create)
            {
                return new ResolvedRoot(beneath + "/" + relative, beneath, 0, 0);
            }

            if (fd < 0)
            {
                var why = -fd switch
                {
                    Libc.ELOOP => "is a symbolic link",
                    Libc.ENOTDIR => "is not a directory",
                    _ => "cannot be used: " + Marshal.GetPInvokeErrorMessage(-fd),
                };
                throw ApiException.BadRequest($"fs root '{root}' is not allowed: '{allowed}/{failedAt}' {why} (a root is resolved inside {allowed} without following links)");
            }

            try
            {
                return Libc.TryIdentity(fd, out var device, out var inode)
                    ? new ResolvedRoot(beneath + "/" + relative, beneath, device, inode)
                    : throw new InvalidOperationException($"fstat of fs root '{root}' failed");
            }
            finally
            {
                Libc.close(fd);
            }
        }
        finally
        {
            Libc.close(beneathFd);
        }
    }

    /// <summary>A local workspace's directory (under the data directory's workspaces/), created, with its identity.</summary>
    public ResolvedRoot ResolveLocal(string directory)
    {
        Directory.CreateDirectory(options.WorkspacesDir);
        var beneathFd = Libc.openat2(Libc.AT_FDCWD, options.WorkspacesDir, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, 0);
        if (beneathFd < 0)
        {
            throw SyscallException.FromLastError("openat2", options.WorkspacesDir);
        }

        try
        {
            var beneath = RealPath(beneathFd) ?? options.WorkspacesDir;
            var relative = Path.GetRelativePath(options.WorkspacesDir, directory);
            var fd = Libc.OpenDirectoryBeneath(beneathFd, relative, create: true, DirectoryMode, out var failedAt);
            if (fd < 0)
            {
                throw new SyscallException("openat2", -fd, Path.Combine(options.WorkspacesDir, failedAt));
            }

            try
            {
                return Libc.TryIdentity(fd, out var device, out var inode)
                    ? new ResolvedRoot(beneath + "/" + relative, beneath, device, inode)
                    : throw SyscallException.FromLastError("fstat", directory);
            }
            finally
            {
                Libc.close(fd);
            }
        }
        finally
        {
            Libc.close(beneathFd);
        }
    }

    /// <summary>
    /// Refuses roots of one new sandbox that nest in each other or in Hive's own directories (400),
    /// or in another sandbox's root (409). Equal roots of different sandboxes share a workspace.
    /// </summary>
    public void RefuseOverlaps(string sandbox, IReadOnlyList<FsMountConfig> mounts, IEnumerable<(string Sandbox, string Root)> existing)
    {
        var mine = mounts.Select((m, i) => (Index: i, m.Root)).Where(m => m.Root is not null).Select(m => (m.Index, Path: Canonical(m.Root!))).ToList();
        foreach (var (index, path) in mine)
        {
            foreach (var (other, otherPath) in mine.Where(o => o.Index != index))
            {
                if (path == otherPath || Nested(path, otherPath))
                {
                    throw ApiException.BadRequest($"fs[{index}].root '{path}' overlaps fs[{other}].root '{otherPath}': the workspaces of one sandbox need separate, unrelated directories");
                }
            }

            foreach (var own in OwnDirectories())
            {
                if (path == own || Nested(path, own))
                {
                    throw ApiException.BadRequest($"fs[{index}].root '{path}' overlaps Hive's own directory '{own}' (state, workspaces, images or programs): not allowed");
                }
            }

            foreach (var (name, root) in existing)
            {
                var theirs = Canonical(root);
                if (name != sandbox && Nested(path, theirs))
                {
                    throw ApiException.Conflict(
                        $"fs[{index}].root '{path}' overlaps the workspace root '{theirs}' of sandbox '{name}' (one lies inside the other): a sandbox could then change what the other one's workspace is; share the same root, or use separate ones");
                }
            }
        }
    }

    /// <summary>The path a root resolves to by name: the allowed directory's real path plus the (link-free) rest.</summary>
    private string Canonical(string root)
    {
        var allowed = options.FsRoots.Where(a => root.StartsWith(a + "/", StringComparison.Ordinal)).MaxBy(a => a.Length);
        return allowed is null ? root : RealPath(allowed) + root[allowed.Length..];
    }

    private IEnumerable<string> OwnDirectories() =>
        new[] { options.DataDir, options.ImageDir, options.AgentBundle, Path.GetDirectoryName(options.SbxdPath), Path.GetDirectoryName(options.SbxFusePath), Path.GetDirectoryName(options.SbxProxyPath) }
            .Where(d => !string.IsNullOrEmpty(d))
            .Select(d => RealPath(Path.GetFullPath(d!).TrimEnd('/')));

    /// <summary>One strictly inside the other.</summary>
    private static bool Nested(string a, string b) =>
        a.StartsWith(b + "/", StringComparison.Ordinal) || b.StartsWith(a + "/", StringComparison.Ordinal) || a == "/" || b == "/";

    private static string RealPath(string path)
    {
        var fd = Libc.openat2(Libc.AT_FDCWD, path, Libc.O_PATH | Libc.O_CLOEXEC, 0, 0);
        if (fd < 0)
        {
            return path;
        }

        try
        {
            return RealPath(fd) ?? path;
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>Every symlink resolved (the kernel's view), via /proc/self/fd of an open descriptor.</summary>
    private static string? RealPath(int fd) =>
        new FileInfo("/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture)).LinkTarget;
}
