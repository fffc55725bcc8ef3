using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hive.Sbxd.Runtime;

/// <summary>
/// The pool of id ranges (<see cref="IdRange"/>) one Controller hands out, one lease file per
/// sandbox under <c>&lt;data&gt;/ids/leases/&lt;index&gt;</c> (<c>{"name": …, "base": …}</c>), like the network's
/// /30 leases: taken by the sandbox's Sbxd, kept across restarts of Sbxd and the Controller (the
/// sandbox's files on the host belong to the range), removed when the sandbox is destroyed.
/// </summary>
/// <remarks>
/// A lease records its base, so ranges stay what they were if the operator moves the pool later;
/// a new lease never overlaps a recorded one. Two Controllers on one host need pools of their own
/// (<c>--userns-base</c>), as they need network pools of their own.
/// </remarks>
internal sealed class IdLeases(string leasesDir, uint poolBase, int poolRanges)
{
    /// <summary>
    /// The sandbox's lease: the one it holds, else the range its files already belong to
    /// (<paramref name="preferredBase"/>, the owner of its upper layer) if that is still free, else the
    /// lowest free range of the pool.
    /// </summary>
    public IdRange Acquire(string name, uint? preferredBase)
    {
        Directory.CreateDirectory(leasesDir);
        // One Sbxd at a time (flock through FileShare.None), as for the network leases.
        using var gate = OpenLock();
        var leases = Read().ToList();
        if (leases.FirstOrDefault(l => l.Name == name) is { Name: not null } own)
        {
            return new IdRange(own.Index, own.Base);
        }

        bool Free(uint candidate) => !leases.Any(l => new IdRange(l.Index, l.Base).Overlaps(candidate));
        var used = leases.Select(l => l.Index).ToHashSet();
        if (preferredBase is { } preferred && preferred >= poolBase && (preferred - poolBase) % IdRange.Size == 0 &&
            (preferred - poolBase) / IdRange.Size < (uint)poolRanges && Free(preferred) && !used.Contains((int)((preferred - poolBase) / IdRange.Size)))
        {
            return Write(name, (int)((preferred - poolBase) / IdRange.Size), preferred);
        }

        for (var index = 0; index < poolRanges; index++)
        {
            var candidate = poolBase + ((uint)index * IdRange.Size);
            if (!used.Contains(index) && Free(candidate))
            {
                return Write(name, index, candidate);
            }
        }

        throw new InvalidOperationException($"the id pool ({poolRanges} ranges of {IdRange.Size} from {poolBase}) has no free range left");
    }

    /// <summary>The lease <paramref name="name"/> holds, without taking one (teardown).</summary>
    public IdRange? Find(string name)
    {
        if (!Directory.Exists(leasesDir))
        {
            return null;
        }

        var own = Read().FirstOrDefault(l => l.Name == name);
        return own.Name is null ? null : new IdRange(own.Index, own.Base);
    }

    public void Release(string name)
    {
        if (!Directory.Exists(leasesDir))
        {
            return;
        }

        using var gate = OpenLock();
        foreach (var lease in Read().Where(l => l.Name == name).ToList())
        {
            File.Delete(lease.File);
        }
    }

    private IdRange Write(string name, int index, uint rangeBase)
    {
        var file = Path.Combine(leasesDir, index.ToString(CultureInfo.InvariantCulture));
        var json = new JsonObject { ["name"] = name, ["base"] = rangeBase, ["size"] = IdRange.Size };
        File.WriteAllText(file + ".tmp", json.ToJsonString());
        File.Move(file + ".tmp", file, overwrite: true);
        return new IdRange(index, rangeBase);
    }

    /// <summary>Every readable lease. An unreadable one still blocks its index's range (its owner is unknown, its ids may be in use).</summary>
    private IEnumerable<(int Index, string File, string? Name, uint Base)> Read()
    {
        foreach (var file in Directory.EnumerateFiles(leasesDir))
        {
            if (!int.TryParse(Path.GetFileName(file), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                continue;
            }

            string? name = null;
            var rangeBase = poolBase + ((uint)index * IdRange.Size);
            try
            {
                var node = JsonNode.Parse(File.ReadAllText(file));
                name = node?["name"]?.GetValue<string>();
                rangeBase = node?["base"]?.GetValue<uint>() ?? rangeBase;
            }
            catch (Exception ex) when (ex is JsonException or IOException or InvalidOperationException or FormatException)
            {
                name = null;
            }

            yield return (index, file, name, rangeBase);
        }
    }

    private FileStream OpenLock()
    {
        var path = Path.Combine(leasesDir, ".lock");
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 500)
            {
                Thread.Sleep(10);
            }
        }
    }
}
