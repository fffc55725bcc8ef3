namespace Hive.Agent.Mcp;

/// <summary>MIME type from a file's first bytes (magic numbers), the extension only as a tie-breaker.</summary>
internal static class MediaTypes
{
    public static string? Detect(ReadOnlySpan<byte> head, string path)
    {
        static bool At(ReadOnlySpan<byte> data, int offset, ReadOnlySpan<byte> magic) => data.Length >= offset + magic.Length && data.Slice(offset, magic.Length).SequenceEqual(magic);

        if (At(head, 0, [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A])) return "image/png";
        if (At(head, 0, [0xFF, 0xD8, 0xFF])) return "image/jpeg";
        if (At(head, 0, "GIF87a"u8) || At(head, 0, "GIF89a"u8)) return "image/gif";
        if (At(head, 0, "RIFF"u8) && At(head, 8, "WEBP"u8)) return "image/webp";
        if (At(head, 0, "RIFF"u8) && At(head, 8, "WAVE"u8)) return "audio/wav";
        if (At(head, 0, "BM"u8)) return "image/bmp";
        if (At(head, 0, [0x00, 0x00, 0x01, 0x00])) return "image/x-icon";
        if (At(head, 4, "ftypavif"u8)) return "image/avif";
        if (At(head, 4, "ftypM4A "u8)) return "audio/mp4";
        if (At(head, 0, "ID3"u8) || (head.Length >= 2 && head[0] == 0xFF && (head[1] & 0xE0) == 0xE0)) return "audio/mpeg";
        if (At(head, 0, "OggS"u8)) return "audio/ogg";
        if (At(head, 0, "fLaC"u8)) return "audio/flac";
        if (At(head, 0, "%PDF-"u8)) return "application/pdf";

        // Text-based: SVG is XML whose root is <svg.
        var text = System.Text.Encoding.UTF8.GetString(head[..Math.Min(head.Length, 512)]).TrimStart('\uFEFF', ' ', '\t', '\r', '\n');
        if (text.StartsWith("<svg", StringComparison.OrdinalIgnoreCase) || (text.StartsWith("<?xml", StringComparison.Ordinal) && text.Contains("<svg", StringComparison.OrdinalIgnoreCase)))
        {
            return "image/svg+xml";
        }

        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".svg" => "image/svg+xml",
            _ => null,
        };
    }
}
