using Hive.Interop;
using Hive.Interop.Fuse;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// Who the kernel says is asking, and acting as them. SbxFuse mounts without
/// <c>default_permissions</c> (that option makes the kernel re-read a directory's attributes
/// before every create or delete in it: one round trip more per file). Instead, a caller other
/// than root has its path operations done under its own file-system identity — fsuid, fsgid and
/// supplementary groups, on this worker thread only — so the backing file system applies POSIX
/// permissions itself: search permission on every directory from the workspace root down (paths
/// are resolved from the root descriptor), write permission on the parent, the sticky bit,
/// ownership for chmod, chown and utimens; and what such a caller creates belongs to it.
/// Root in a sandbox holds CAP_DAC_OVERRIDE, CAP_FOWNER and CAP_CHOWN (Hive's OCI spec), which
/// SbxFuse's own identity matches: for it nothing changes and no system call is made.
/// Hive's ACLs are decided before any of this, for every caller alike.
/// In a sandbox with a user namespace the kernel names callers by host id (the range's base + u);
/// they act as the sandbox's own id u (<see cref="IdMap"/>), which is what the backing directory
/// stores, and the range's root is root.
/// </summary>
internal static unsafe class CallerIdentity
{
    private const int MaxGroups = 256;

    private static readonly int OwnUid = Libc.setfsuid(-1);
    private static readonly int OwnGid = Libc.setfsgid(-1);
    private static readonly uint[] OwnGroups = ReadOwnGroups();

    [ThreadStatic]
    private static bool t_assumed;

    /// <summary>
    /// Takes on the calling process's identity for this thread when it is not root's. False when
    /// that failed: the operation must then not run (fail closed).
    /// </summary>
    public static bool Assume()
    {
        var context = LibFuse.fuse_get_context();
        var uid = context is null ? 0 : IdMap.CallerToInside(context->Uid);
        if (uid == 0)
        {
            return !t_assumed || Restore(); // a restore that failed earlier is retried before acting as root
        }

        var gid = IdMap.CallerToInside(context->Gid);

        // Groups the kernel cannot tell us (the process is gone) are left out: fewer rights, never more.
        // Read from /proc as host ids: those outside the sandbox's range are left out too.
        var groups = stackalloc uint[MaxGroups];
        var count = LibFuse.fuse_getgroups(MaxGroups, groups);
        count = Math.Clamp(count, 0, MaxGroups);
        if (IdMap.Count != 0)
        {
            var kept = 0;
            for (var i = 0; i < count; i++)
            {
                if (IdMap.TryArgumentToInside(groups[i], out var inside) && groups[i] != uint.MaxValue)
                {
                    groups[kept++] = inside;
                }
            }

            count = kept;
        }

        t_assumed = true;
        if (Libc.setgroups_thread(count, groups) != 0)
        {
            Restore();
            return false;
        }

        Libc.setfsgid((int)gid);
        Libc.setfsuid((int)uid);
        if (Libc.setfsuid(-1) != (int)uid || Libc.setfsgid(-1) != (int)gid)
        {
            Restore();
            return false;
        }

        return true;
    }

    /// <summary>Back to SbxFuse's own identity (after <see cref="Assume"/>); false if the kernel refused.</summary>
    public static bool Restore()
    {
        if (!t_assumed)
        {
            return true;
        }

        Libc.setfsuid(OwnUid);
        Libc.setfsgid(OwnGid);
        fixed (uint* groups = OwnGroups)
        {
            Libc.setgroups_thread(OwnGroups.Length, groups);
        }

        t_assumed = Libc.setfsuid(-1) != OwnUid || Libc.setfsgid(-1) != OwnGid;
        return !t_assumed;
    }

    /// <summary>
    /// Runs <paramref name="action"/> under SbxFuse's own identity, then acts as the caller again —
    /// for what SbxFuse owes every caller whatever their rights (clearing set-ID bits on write).
    /// False if the action failed or either switch did (the operation must then fail).
    /// </summary>
    public static bool AsSelf(Func<bool> action)
    {
        if (!t_assumed)
        {
            return action();
        }

        if (!Restore())
        {
            return false;
        }

        var done = false;
        try
        {
            done = action();
        }
        finally
        {
            done &= Assume();
        }

        return done;
    }

    /// <summary><see cref="AsSelf"/> for work that reports failure by throwing (the audit spool's rotation).</summary>
    public static void RunAsSelf(Action action)
    {
        if (!AsSelf(() =>
            {
                action();
                return true;
            }))
        {
            throw new IOException("could not switch between the caller's identity and SbxFuse's");
        }
    }

    private static uint[] ReadOwnGroups()
    {
        var count = Libc.getgroups(0, null);
        var groups = new uint[Math.Max(0, count)];
        fixed (uint* p = groups)
        {
            count = groups.Length == 0 ? 0 : Libc.getgroups(groups.Length, p);
        }

        return groups[..Math.Max(0, count)];
    }
}
