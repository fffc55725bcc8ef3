using System.Runtime.InteropServices;

namespace Hive.Interop;

/// <summary>mount(2) / umount2(2).</summary>
public static partial class Libc
{
    public const int MNT_DETACH = 2;
    public const ulong MS_RDONLY = 0x1;
    public const ulong MS_NOSUID = 0x2;
    public const ulong MS_NODEV = 0x4;
    public const ulong MS_NOEXEC = 0x8;
    public const ulong MS_REMOUNT = 0x20;
    public const ulong MS_BIND = 0x1000;
    public const ulong MS_REC = 0x4000;
    public const ulong MS_SHARED = 1 << 20;
    public const int EINVAL = 22;
    public const int ENOENT = 2;
    public const int EBUSY = 16;

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mount(string source, string target, string fileSystemType, ulong flags, string? data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int umount2(string target, int flags);

    /// <summary>True if <paramref name="path"/> is a mount point (listed in /proc/self/mountinfo).</summary>
    public static bool IsMountPoint(string path)
    {
        var full = Path.GetFullPath(path).TrimEnd('/');
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            var fields = line.Split(' ');
            if (fields.Length > 4 && UnescapeMountPath(fields[4]) == full)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Mount points at or under <paramref name="root"/>, deepest first (the order to unmount them).</summary>
    public static IReadOnlyList<string> MountsUnder(string root)
    {
        var full = Path.GetFullPath(root).TrimEnd('/');
        return File.ReadLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 4)
            .Select(f => UnescapeMountPath(f[4]))
            .Where(p => p == full || p.StartsWith(full + "/", StringComparison.Ordinal))
            .Distinct()
            .OrderByDescending(p => p.Length)
            .ToList();
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string UnescapeMountPath(string field)
    {
        if (!field.Contains('\\', StringComparison.Ordinal))
        {
            return field;
        }

        var sb = new System.Text.StringBuilder(field.Length);
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length)
            {
                sb.Append((char)Convert.ToInt32(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                sb.Append(field[i]);
            }
        }

        return sb.ToString();
    }
}
