using System.Globalization;

namespace Hive.Controller.Hosting;

/// <summary>
/// The ids the host already uses: its users and groups (<c>/etc/passwd</c>, <c>/etc/group</c>) and the
/// subordinate ranges handed to its users for their own containers (<c>/etc/subuid</c>, <c>/etc/subgid</c>).
/// The sandboxes' id pool must stay clear of all of them: a sandbox whose range held a host user's
/// id would own that user's files.
/// </summary>
internal static class HostIds
{
    private static readonly string[] Accounts = ["/etc/passwd", "/etc/group"];
    private static readonly string[] Subordinate = ["/etc/subuid", "/etc/subgid"];

    /// <summary>Every host id or range inside [<paramref name="start"/>, <paramref name="end"/>), as a sentence each.</summary>
    public static IReadOnlyList<string> Overlaps(ulong start, ulong end, Func<string, IEnumerable<string>?>? readLines = null)
    {
        readLines ??= path => File.Exists(path) ? File.ReadLines(path) : null;
        var found = new List<string>();
        foreach (var file in Accounts)
        {
            foreach (var line in readLines(file) ?? [])
            {
                // name:password:ID:… — the id is the third field in both files.
                if (line.Split(':') is [var name, _, var idText, ..] && ulong.TryParse(idText, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id >= start && id < end)
                {
                    found.Add($"{file}: '{name}' has id {id}");
                }
            }
        }

        foreach (var file in Subordinate)
        {
            foreach (var line in readLines(file) ?? [])
            {
                // name:first:count
                if (line.Split(':') is [var name, var firstText, var countText] &&
                    ulong.TryParse(firstText, NumberStyles.None, CultureInfo.InvariantCulture, out var first) &&
                    ulong.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var count) &&
                    first < end && start < first + count)
                {
                    found.Add($"{file}: '{name}' has ids {first}-{first + count - 1}");
                }
            }
        }

        return found;
    }
}
