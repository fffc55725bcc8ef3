using System.Runtime.InteropServices;
using Hive.Interop;
using Hive.Protos.V1;

namespace Hive.Sbxd.Runtime;

/// <summary>A workspace's backing directory is not the one it was created with (or cannot be reached without following a link).</summary>
internal sealed class WorkspaceRootException(string message, int errno) : InvalidOperationException(message)
{
    /// <summary>The errno recorded with the refusal (ESTALE for a replaced directory).</summary>
    public int Errno { get; } = errno;
}

/// <summary>
/// Opens a workspace's backing directory for SbxFuse, which gets the descriptor, never a path.
/// </summary>
/// <remarks>
/// A shared root lies in an operator's directory that other sandboxes' workspaces may lie in too;
/// opening it by path on every SbxFuse (re)start, following links, let whoever could change a
/// component of that path — a sandbox whose own workspace is a parent of it — point it anywhere,
/// the host's <c>/</c> included, and have the next restart serve that. So it is opened beneath the
/// directory recorded in the spec (<see cref="FsMount.SourceBeneath"/>), component by component,
/// without following any link, and served only if it is still the directory (device, inode) the
/// Controller recorded when the workspace was created. Anything else fails closed: the workspace
/// stays unserved (its mount point is a read-only empty bind) and the refusal is an event.
/// </remarks>
internal static class WorkspaceRoot
{
    private const int ESTALE = 116;

    /// <summary>
    /// The directory as an O_PATH descriptor (close-on-exec). A spec without a recorded identity
    /// (written before it was kept) learns it now: <paramref name="learned"/> is then true and the
    /// spec's fields are set — the caller persists it.
    /// </summary>
    public static int Open(FsMount spec, out bool learned)
    {
        learned = false;
        int fd;
        string how;
        if (spec.SourceBeneath.Length > 0)
        {
            if (!spec.Source.StartsWith(spec.SourceBeneath.TrimEnd('/') + "/", StringComparison.Ordinal))
            {
                throw new WorkspaceRootException($"workspace {spec.Mount}: its root {spec.Source} does not lie beneath {spec.SourceBeneath}; not served", Libc.EINVAL);
            }

            // The operator's directory itself is opened by path (links in it are the operator's own).
            var beneath = Libc.openat2(Libc.AT_FDCWD, spec.SourceBeneath, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, 0);
            if (beneath < 0)
            {
                var error = Marshal.GetLastPInvokeError();
                throw new WorkspaceRootException($"workspace {spec.Mount}: {spec.SourceBeneath} cannot be opened ({Marshal.GetPInvokeErrorMessage(error)}); not served", error);
            }

            fd = Libc.OpenDirectoryBeneath(beneath, spec.Source[(spec.SourceBeneath.TrimEnd('/').Length + 1)..], create: false, 0, out var failedAt);
            Libc.close(beneath);
            how = $"beneath {spec.SourceBeneath} (at '{failedAt}')";
        }
        else
        {
            // A spec from before the directory it lies beneath was recorded: a shared root is still
            // opened without following any link; a local one lies in the operator's data directory.
            fd = Libc.openat2(Libc.AT_FDCWD, spec.Source, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0, spec.Shared ? Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_NO_MAGICLINKS : 0);
            fd = fd < 0 ? -Marshal.GetLastPInvokeError() : fd;
            how = "by path";
        }

        if (fd < 0)
        {
            var reason = -fd == Libc.ELOOP ? "a symbolic link is in its place" : Marshal.GetPInvokeErrorMessage(-fd);
            throw new WorkspaceRootException($"workspace {spec.Mount}: its root {spec.Source} cannot be opened without following links {how}: {reason}; not served", -fd);
        }

        if (!Libc.TryIdentity(fd, out var device, out var inode))
        {
            var error = Marshal.GetLastPInvokeError();
            Libc.close(fd);
            throw new WorkspaceRootException($"workspace {spec.Mount}: fstat of its root failed; not served", error);
        }

        if (spec.SourceDev == 0 && spec.SourceIno == 0)
        {
            spec.SourceDev = device;
            spec.SourceIno = inode;
            learned = true;
        }
        else if (spec.SourceDev != device || spec.SourceIno != inode)
        {
            Libc.close(fd);
            throw new WorkspaceRootException(
                $"workspace {spec.Mount}: its root {spec.Source} is no longer the directory it was created as (device:inode {device}:{inode}, recorded {spec.SourceDev}:{spec.SourceIno}); not served",
                ESTALE);
        }

        return fd;
    }
}
