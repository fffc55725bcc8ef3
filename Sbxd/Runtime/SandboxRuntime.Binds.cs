using Hive.Interop;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// Where the container's mounts come from, so that its mountinfo names no host path: every bind
/// source sits on a tmpfs of the sandbox's own (<see cref="SandboxLayout.BindsDir"/>), the agent
/// bundle is an overlay of its own (its root is the bundle), and overlay layers are given by
/// descriptor (<see cref="Overlay"/>).
/// </summary>
internal sealed partial class SandboxRuntime
{
    /// <summary>Enough for a resolver, a CA bundle and the mount points; pages are used only as written.</summary>
    private const string BindsOptions = "mode=0700,size=16m,nr_inodes=4096";

    private void EnsureBinds()
    {
        if (Libc.IsMountPoint(layout.BindsDir))
        {
            LogAdopted(logger, "binds", layout.BindsDir);
        }
        else
        {
            Directory.CreateDirectory(layout.BindsDir);
            if (Libc.mount("hive", layout.BindsDir, "tmpfs", Libc.MS_NOSUID | Libc.MS_NODEV | Libc.MS_NOEXEC, BindsOptions) != 0)
            {
                throw SyscallException.FromLastError("mount(tmpfs)", layout.BindsDir);
            }

            LogCreated(logger, "binds", layout.BindsDir);
        }

        if (Libc.IsMountPoint(layout.AgentMount))
        {
            return;
        }

        // A bind of the bundle would show its host path as the mount's root; an overlay's root is "/".
        // It has no upper layer, so it is read-only, and costs no memory beyond the page cache a bind
        // would use too (a tmpfs copy of today's bundle held ~115 MiB of RAM). Without an upper layer
        // overlayfs wants two lower ones: the second is an empty directory.
        var empty = Path.Combine(layout.BindsDir, "empty");
        Directory.CreateDirectory(empty);
        Directory.CreateDirectory(layout.AgentMount);
        Overlay.Mount("hive", layout.AgentMount, [layout.Spec.AgentBundle, empty], null, Libc.MS_RDONLY | Libc.MS_NOSUID | Libc.MS_NODEV);
        LogCreated(logger, "agent mount", layout.AgentMount);
    }

    /// <summary>
    /// A sandbox set up by an earlier Sbxd has its rootfs mounted but no binds tmpfs: its container
    /// binds host paths (and its overlay options name them). Take it down to the rootfs's files and
    /// set it up again on this layout — its processes are lost once, its files are kept.
    /// </summary>
    private async Task RetireEarlierLayoutAsync(CancellationToken cancellationToken)
    {
        // A spec with a user namespace was written by a Controller that knew the binds tmpfs already.
        if (layout.UsesUserNamespace || !Libc.IsMountPoint(layout.Rootfs) || Libc.IsMountPoint(layout.BindsDir))
        {
            return;
        }

        LogRetiring(logger, layout.Name);
        Workspaces.TearDown();
        await Command.RunAsync(Runc, ["kill", "--all", layout.ContainerId, "KILL"], cancellationToken);
        await Command.RunAsync(Runc, ["delete", "--force", layout.ContainerId], cancellationToken);
        foreach (var mount in Libc.MountsUnder(layout.StateDir))
        {
            if (Libc.umount2(mount, 0) != 0 && Libc.umount2(mount, Libc.MNT_DETACH) != 0)
            {
                throw SyscallException.FromLastError("umount2", mount);
            }
        }
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Sandbox {Name} was set up by an earlier Sbxd (its container binds host paths): starting its container again on the current layout")]
    private static partial void LogRetiring(ILogger logger, string name);
}
