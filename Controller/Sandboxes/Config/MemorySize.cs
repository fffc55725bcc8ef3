using System.Globalization;

namespace Hive.Controller.Sandboxes.Config;

/// <summary>Docker-style memory sizes: "512m", "1g", "1.5g", "65536k", "1048576" (bytes), case-insensitive, optional "b"/"ib".</summary>
internal static class MemorySize
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        var s = text.Trim().ToLowerInvariant();
        if (s.EndsWith("ib", StringComparison.Ordinal))
        {
            s = s[..^2];
        }
        else if (s.EndsWith('b') && s.Length > 1 && !char.IsDigit(s[^2]))
        {
            s = s[..^1];
        }
        else if (s.EndsWith('b'))
        {
            s = s[..^1];
        }

        if (s.Length == 0)
        {
            return false;
        }

        long multiplier = s[^1] switch
        {
            'k' => 1L << 10,
            'm' => 1L << 20,
            'g' => 1L << 30,
            't' => 1L << 40,
            _ => 1,
        };
        if (multiplier != 1)
        {
            s = s[..^1];
        }

        if (!decimal.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount) || amount <= 0)
        {
            return false;
        }

        if (amount > (long.MaxValue / 2) / multiplier)
        {
            return false;
        }

        bytes = (long)decimal.Floor(amount * multiplier);
        return bytes > 0;
    }

    /// <summary>Shortest exact form: "512m", "1g", "1536k", or bytes.</summary>
    public static string Format(long bytes)
    {
        foreach (var (unit, size) in new[] { ("g", 1L << 30), ("m", 1L << 20), ("k", 1L << 10) })
        {
            if (bytes % size == 0)
            {
                return (bytes / size).ToString(CultureInfo.InvariantCulture) + unit;
            }
        }

        return bytes.ToString(CultureInfo.InvariantCulture);
    }
}
