using Hive.Interop;
using Microsoft.Win32.SafeHandles;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// The sandbox's user namespace: root in the sandbox is nobody on the host. Every sandbox gets a
/// range of 65,536 host ids of its own (<see cref="IdLeases"/>); in-sandbox id u is host id base + u.
/// </summary>
/// <remarks>
/// <para>
/// The namespace is made by Sbxd before runc runs and kept by a bind mount of its nsfs file
/// (<see cref="SandboxLayout.UserNamespaceFile"/>), like the network namespace in <c>/run/netns</c>;
/// runc joins it by path. Three things need it to exist first and to be the same one for the
/// sandbox's whole life (container restarts, Sbxd restarts):
/// </para>
/// <list type="bullet">
/// <item>the network namespace is created inside it, so that it belongs to the sandbox's namespace —
/// the kernel mounts a fresh sysfs only for a network namespace the mounter's user namespace owns.
/// (The other way, binding the host's /sys, would show every host interface and debugfs/tracefs);</item>
/// <item>the image's root filesystem is the overlay's lower layer through an idmapped mount made
/// with this namespace (<see cref="Libc.OpenIdmappedTree"/>): one shared read-only copy on disk,
/// shown to the sandbox as owned by its own ids, never copied or chowned per sandbox;</item>
/// <item>runc, told to join it, starts the agent in it (<c>linux.namespaces</c> type user, path).</item>
/// </list>
/// <para>
/// What the sandbox creates belongs to its range on the host (the upper layer is owned by the
/// range's root). The rootfs mount point moves out of the 0700 state dir to
/// <see cref="SandboxLayout.RuntimeDir"/>, which only the range's root group may pass: runc mounts the
/// root from inside the namespace. Bind sources need no such care (runc opens them as the host's
/// root and hands them in as descriptors).
/// </para>
/// </remarks>
internal sealed partial class UserNamespace(SandboxLayout layout, ILogger logger)
{
    private const uint RootOnlyTraverse = 0x1c8; // 0710: owner rwx, group x

    private IdLeases Leases => new(layout.Spec.IdLeasesDir, layout.Spec.IdPoolBase, (int)layout.Spec.IdPoolRanges);

    public bool Enabled => layout.UsesUserNamespace;

    /// <summary>The sandbox's id range once <see cref="EnsureAsync"/> ran, else null.</summary>
    public IdRange? Range { get; private set; }

    /// <summary>Takes the sandbox's id range and makes (or adopts) its user namespace.</summary>
    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (!Enabled)
        {
            return;
        }

        Range = Leases.Acquire(layout.Name, UpperOwner());
        if (UpperOwner() is { } owner && owner != Range.Base)
        {
            // Only if a lease file was removed by hand and the range went to another sandbox meanwhile:
            // serving these files in a different range would hand them to other ids. Fail closed.
            throw new InvalidOperationException($"the sandbox's files belong to host ids from {owner}, but its id lease is {Range.Base}; restore its lease file under {layout.Spec.IdLeasesDir}");
        }

        if (File.Exists(layout.UserNamespaceFile) && Libc.IsMountPoint(layout.UserNamespaceFile))
        {
            LogAdopted(logger, layout.Name, Range.Base);
            return;
        }

        File.WriteAllBytes(layout.UserNamespaceFile, []);
        using var holder = await NamespaceHolder.StartAsync(["unshare", "--user", "--"], cancellationToken);
        // Written by a process with CAP_SETUID/CAP_SETGID in the parent namespace, so setgroups(2) stays
        // allowed inside (apt, su and sudo drop groups); one write(2) each, as user_namespaces(7) requires.
        WriteMap($"/proc/{holder.Pid}/uid_map", Range.MapLine);
        WriteMap($"/proc/{holder.Pid}/gid_map", Range.MapLine);
        if (Libc.mount($"/proc/{holder.Pid}/ns/user", layout.UserNamespaceFile, "none", Libc.MS_BIND, null) != 0)
        {
            throw SyscallException.FromLastError("mount(bind user namespace)", layout.UserNamespaceFile);
        }

        LogCreated(logger, layout.Name, Range.Base);
    }

    /// <summary>The user namespace, opened (for an idmapped mount or an ownership check).</summary>
    public SafeFileHandle Open() => Libc.OpenNamespace(layout.UserNamespaceFile);

    /// <summary>True when the network namespace at <paramref name="netnsPath"/> belongs to the sandbox's user namespace.</summary>
    public bool Owns(string netnsPath)
    {
        using var netns = Libc.OpenNamespace(netnsPath);
        using var own = Open();
        return Libc.TryOwningUserNamespace(netns, out var device, out var inode) &&
            Libc.TryIdentity(own, out var ownDevice, out var ownInode) && device == ownDevice && inode == ownInode;
    }

    /// <summary>True when process <paramref name="pid"/> runs in the sandbox's user namespace.</summary>
    public bool Holds(int pid)
    {
        try
        {
            using var theirs = Libc.OpenNamespace($"/proc/{pid}/ns/user");
            using var own = Open();
            return Libc.TryIdentity(theirs, out var device, out var inode) &&
                Libc.TryIdentity(own, out var ownDevice, out var ownInode) && device == ownDevice && inode == ownInode;
        }
        catch (SyscallException)
        {
            return false;
        }
    }

    /// <summary>Creates the sandbox's network namespace inside its user namespace, as <c>/run/netns/NAME</c>.</summary>
    public async Task CreateNetworkNamespaceAsync(string netnsName, CancellationToken cancellationToken)
    {
        // nsenter makes the holder root of the sandbox's namespace (uid and gid 0 there, all
        // capabilities in it), so unshare may create the network namespace, owned by it. ip, run by
        // Sbxd, keeps it under /run/netns as it does for every namespace of its own.
        // While there, as the namespace's root with CAP_SYS_RESOURCE in it (which the sandbox lacks,
        // and its /proc/sys is read-only anyway): no user namespace may be made inside this one. The
        // seccomp filter refuses that already; this is the kernel's own limit behind it (ENOSPC).
        // runc only joins the namespace, and creates none of that kind.
        using var holder = await NamespaceHolder.StartAsync(
            ["nsenter", "--user=" + layout.UserNamespaceFile, "--", "unshare", "--net", "--"],
            cancellationToken,
            "echo 0 > /proc/sys/user/max_user_namespaces");
        await Command.RequireAsync("ip", ["netns", "attach", netnsName, holder.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], "ip netns attach", cancellationToken);
    }

    /// <summary>
    /// The directory of the rootfs mount point: <c>root:&lt;range root&gt;</c> 0710 (see <see cref="SandboxLayout.RuntimeDir"/>).
    /// Its parents are 0711: passable by every range's root, listable by none.
    /// </summary>
    public void PrepareRuntimeDir()
    {
        var range = Range ?? throw new InvalidOperationException("no id range");
        var parent = Path.GetDirectoryName(layout.RuntimeDir)!;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                foreach (var dir in new[] { Path.GetDirectoryName(parent)!, parent })
                {
                    Directory.CreateDirectory(dir);
                    File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
                }

                Directory.CreateDirectory(layout.RuntimeDir);
                break;
            }
            catch (DirectoryNotFoundException) when (attempt < 3)
            {
                // The last other sandbox of this Controller removed the shared parent just now (RemoveRuntimeDir).
            }
        }

        Chown(layout.RuntimeDir, 0, range.Base);
        File.SetUnixFileMode(layout.RuntimeDir, (UnixFileMode)RootOnlyTraverse);
        Directory.CreateDirectory(layout.Rootfs);
    }

    /// <summary>The upper layer's root belongs to the range's root: it is the sandbox's <c>/</c>.</summary>
    public void OwnUpper(string upper)
    {
        var range = Range ?? throw new InvalidOperationException("no id range");
        Chown(upper, range.Base, range.Base);
        File.SetUnixFileMode(upper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
    }

    /// <summary>A file Sbxd wrote into the fresh rootfs (as the host's root) becomes the sandbox root's.</summary>
    public void OwnFile(string path)
    {
        if (Range is { } range)
        {
            Chown(path, range.Base, range.Base);
        }
    }

    /// <summary>Destroy: the rootfs mount point's directory (the rootfs is already unmounted). Problems are collected.</summary>
    public void RemoveRuntimeDir(List<string> problems)
    {
        if (!Enabled || !Directory.Exists(layout.RuntimeDir))
        {
            return;
        }

        foreach (var mount in Libc.MountsUnder(layout.RuntimeDir))
        {
            if (Libc.umount2(mount, 0) != 0 && Libc.umount2(mount, Libc.MNT_DETACH) != 0)
            {
                problems.Add(SyscallException.FromLastError("umount2", mount).Message);
                return;
            }
        }

        try
        {
            // Never recursive: only empty directories are left here once the rootfs is unmounted.
            if (Directory.Exists(layout.Rootfs))
            {
                Directory.Delete(layout.Rootfs);
            }

            Directory.Delete(layout.RuntimeDir);
        }
        catch (IOException ex)
        {
            problems.Add(ex.Message);
            return;
        }

        try
        {
            Directory.Delete(Path.GetDirectoryName(layout.RuntimeDir)!); // the Controller's, once its last sandbox is gone
        }
        catch (IOException)
        {
            // Other sandboxes of the Controller still have theirs.
        }
    }

    /// <summary>Destroy, once the sandbox's files are gone: its range may go to another sandbox.</summary>
    public void ReleaseLease()
    {
        if (Enabled)
        {
            Leases.Release(layout.Name);
        }
    }

    /// <summary>The range a sandbox's existing upper layer belongs to (its root's owner), if any.</summary>
    private uint? UpperOwner() =>
        Directory.Exists(layout.Upper) && Libc.TryOwner(layout.Upper, out var uid, out _) && uid != 0 ? uid : null;

    private static void WriteMap(string path, string line)
    {
        // No buffering: the map must arrive in one write(2).
        using var map = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
        map.Write(System.Text.Encoding.ASCII.GetBytes(line));
    }

    private static void Chown(string path, uint uid, uint gid)
    {
        if (Libc.fchownat(Libc.AT_FDCWD, path, uid, gid, Libc.AT_SYMLINK_NOFOLLOW) != 0)
        {
            throw SyscallException.FromLastError("chown", path);
        }
    }

    [LoggerMessage(EventId = 60, Level = LogLevel.Information, Message = "Sandbox {Name}: user namespace created, host ids from {Base}")]
    private static partial void LogCreated(ILogger logger, string name, uint @base);

    [LoggerMessage(EventId = 61, Level = LogLevel.Information, Message = "Sandbox {Name}: adopted its user namespace, host ids from {Base}")]
    private static partial void LogAdopted(ILogger logger, string name, uint @base);
}
