using Hive.Interop.Fuse;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// Ids between the kernel (host ids) and the backing directory (the sandbox's own ids), for a
/// sandbox in a user namespace (<c>--id-map BASE:COUNT</c>: in-sandbox id u is host id BASE + u).
/// </summary>
/// <remarks>
/// SbxFuse mounts in the host's user namespace, so the kernel speaks host ids to it: a caller that
/// is uid 1000 in the sandbox arrives as BASE + 1000, a chown names host ids, and attributes it
/// returns are read as host ids (an owner outside the sandbox's range shows as nobody inside).
/// The backing directory keeps the sandbox's own ids: a workspace outlives the sandbox and is served
/// again, by name, to a sandbox created later with another range — its owners must mean the same
/// users there. So ids are mapped both ways here, at the edge: callers and chown arguments in,
/// attributes out. Without a map (no user namespace) every id passes unchanged.
/// </remarks>
internal static class IdMap
{
    /// <summary>The id the kernel shows for an owner that has no id in the sandbox (overflowuid).</summary>
    public const uint Nobody = 65534;

    /// <summary>Host id of the sandbox's root; meaningful only while <see cref="Count"/> is not 0.</summary>
    public static uint Base { get; private set; }

    /// <summary>Ids in the range; 0 = no map.</summary>
    public static uint Count { get; private set; }

    /// <summary>Parses <c>BASE:COUNT</c> (or <c>none</c>); false on anything else.</summary>
    public static bool TryConfigure(string text)
    {
        if (text == "none")
        {
            Base = Count = 0;
            return true;
        }

        if (text.Split(':') is [var b, var c] && uint.TryParse(b, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var idBase) &&
            uint.TryParse(c, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count) &&
            count is > 0 and <= 65536 && idBase >= 65536 && (ulong)idBase + count <= uint.MaxValue)
        {
            Base = idBase;
            Count = count;
            return true;
        }

        return false;
    }

    /// <summary>
    /// A caller's host id as the sandbox's id (its file-system identity on the backing directory).
    /// The host's root (outside any range; only host tools can reach the mount) stays root; any other
    /// id from outside the range is nobody — fewer rights, never more.
    /// </summary>
    public static uint CallerToInside(uint hostId) =>
        Count == 0 || hostId == 0 ? hostId : InRange(hostId) ? hostId - Base : Nobody;

    /// <summary>A chown argument as the sandbox's id; false for an id the sandbox has no name for (the kernel would not send one).</summary>
    public static bool TryArgumentToInside(uint hostId, out uint inside)
    {
        inside = hostId;
        if (Count == 0 || hostId == uint.MaxValue)
        {
            return true; // no map, or -1: "leave unchanged"
        }

        if (!InRange(hostId))
        {
            return false;
        }

        inside = hostId - Base;
        return true;
    }

    /// <summary>An owner stored in the backing directory, as the host id the kernel must be told.</summary>
    public static uint ToHost(uint stored) => Count == 0 ? stored : Base + (stored < Count ? stored : Nobody);

    /// <summary>Maps the owner and group of attributes about to be returned to the kernel.</summary>
    public static unsafe void MapOut(Stat* stat)
    {
        if (Count != 0)
        {
            stat->Uid = ToHost(stat->Uid);
            stat->Gid = ToHost(stat->Gid);
        }
    }

    private static bool InRange(uint hostId) => hostId >= Base && hostId - Base < Count;
}
