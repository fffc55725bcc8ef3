using System.Globalization;

namespace Hive.Events.Spool;

/// <summary>
/// Naming of spool files: <c>&lt;source&gt;.&lt;generation&gt;.spool</c> in a sandbox's host-only spool
/// directory. A producer appends to its newest generation only and starts a new one after a
/// failed write, on rotation and on every start, so a torn record can only ever end a generation.
/// A record is <c>u32 length (LE) | Event protobuf (seq 0)</c>.
/// </summary>
public static class SpoolFiles
{
    public const string Extension = ".spool";

    /// <summary>Largest record accepted; anything longer is corruption.</summary>
    public const int MaxRecordBytes = 1024 * 1024;

    /// <summary>A producer name: short, [a-z0-9-].</summary>
    public static bool IsValidSource(string source) =>
        source.Length is > 0 and <= 40 && source.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-');

    public static string FileName(string source, long generation) =>
        source + "." + generation.ToString("D10", CultureInfo.InvariantCulture) + Extension;

    /// <summary>Every spool file in <paramref name="dir"/>, grouped by source, generations ascending.</summary>
    public static Dictionary<string, List<long>> List(string dir)
    {
        var result = new Dictionary<string, List<long>>(StringComparer.Ordinal);
        if (!Directory.Exists(dir))
        {
            return result;
        }

        foreach (var path in Directory.EnumerateFiles(dir, "*" + Extension))
        {
            if (TryParse(Path.GetFileName(path), out var source, out var generation))
            {
                if (!result.TryGetValue(source, out var list))
                {
                    result[source] = list = [];
                }

                list.Add(generation);
            }
        }

        foreach (var list in result.Values)
        {
            list.Sort();
        }

        return result;
    }

    public static bool TryParse(string fileName, out string source, out long generation)
    {
        source = string.Empty;
        generation = 0;
        if (!fileName.EndsWith(Extension, StringComparison.Ordinal))
        {
            return false;
        }

        var stem = fileName[..^Extension.Length];
        var dot = stem.LastIndexOf('.');
        if (dot <= 0 || !long.TryParse(stem.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out generation))
        {
            return false;
        }

        source = stem[..dot];
        return IsValidSource(source);
    }

    /// <summary>A position in a source's spool: generation in the high 24 bits, byte offset in the low 40.</summary>
    public static ulong Position(long generation, long offset) => ((ulong)generation << 40) | (ulong)offset;

    public static (long Generation, long Offset) Split(ulong position) => ((long)(position >> 40), (long)(position & ((1UL << 40) - 1)));
}
