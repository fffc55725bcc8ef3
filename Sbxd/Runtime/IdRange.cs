namespace Hive.Sbxd.Runtime;

/// <summary>
/// A sandbox's 65,536 host user and group ids: in-sandbox id u is host id <see cref="Base"/> + u,
/// for uids and gids alike (<c>uid_map</c> and <c>gid_map</c> are both <c>0 Base 65536</c>).
/// </summary>
/// <param name="Index">Its lease number in the pool.</param>
/// <param name="Base">The host id of the sandbox's root.</param>
internal sealed record IdRange(int Index, uint Base)
{
    /// <summary>Ids per sandbox: every 16-bit id a distribution's tools use, nobody (65534) included.</summary>
    public const uint Size = 65536;

    /// <summary>The line both <c>/proc/PID/uid_map</c> and <c>gid_map</c> get.</summary>
    public string MapLine => FormattableString.Invariant($"0 {Base} {Size}\n");

    public bool Contains(uint hostId) => hostId >= Base && hostId - Base < Size;

    /// <summary>True when the two ranges share an id.</summary>
    public bool Overlaps(uint otherBase) => otherBase < (ulong)Base + Size && Base < (ulong)otherBase + Size;
}
