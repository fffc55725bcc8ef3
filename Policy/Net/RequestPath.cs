using System.Text;

namespace Hive.Policy.Net;

/// <summary>
/// The path of one HTTP request as the egress rules see it, with every reading an upstream might
/// give it. Servers disagree about paths: Tomcat and Spring drop <c>;parameters</c> from segments
/// (so <c>/public/..;/admin</c> is <c>/admin</c> to them), Windows-hosted and many routing layers
/// ignore case, most decode percent-escapes before routing. So the proxy refuses what cannot be
/// read one way only — dot and empty segments (also before a <c>;</c>), encoded <c>/</c>,
/// <c>\</c>, <c>.</c>, <c>;</c>, <c>%</c> and control characters, raw backslashes, bytes that are
/// not UTF-8 (overlong forms of <c>.</c> and <c>/</c> included), a raw <c>#</c> — and decides the rest on the
/// decoded path: a deny rule applies when it matches any reading case-insensitively, an allow rule
/// only when it matches every reading exactly.
/// </summary>
public sealed class RequestPath
{
    public const int MaxLength = 8192;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private string? _lower;

    private RequestPath(string decoded, string? withoutParameters)
    {
        Decoded = decoded;
        WithoutParameters = withoutParameters;
    }

    /// <summary>Every percent-escape decoded (UTF-8).</summary>
    public string Decoded { get; }

    /// <summary>The path with each segment's <c>;parameters</c> removed; null when it has none.</summary>
    public string? WithoutParameters { get; }

    /// <summary>Lower-cased for deny rules (computed when a deny rule with paths first asks).</summary>
    public string Lower => _lower ??= Decoded.ToLowerInvariant();

    public string? LowerWithoutParameters => WithoutParameters?.ToLowerInvariant();

    /// <summary>Parses a request target's path (no query); null with a reason when it can be read more than one way.</summary>
    public static RequestPath? Parse(string rawPath, out string? problem)
    {
        problem = null;
        if (rawPath.Length == 0 || rawPath[0] != '/' || rawPath.Length > MaxLength)
        {
            problem = "not an absolute path of at most 8 KiB";
            return null;
        }

        var bytes = new byte[rawPath.Length];
        var count = 0;
        for (var i = 0; i < rawPath.Length; i++)
        {
            var c = rawPath[i];
            if (c == '%')
            {
                if (i + 2 >= rawPath.Length || !Uri.IsHexDigit(rawPath[i + 1]) || !Uri.IsHexDigit(rawPath[i + 2]))
                {
                    problem = "invalid percent-escape";
                    return null;
                }

                var b = (byte)((Uri.FromHex(rawPath[i + 1]) << 4) | Uri.FromHex(rawPath[i + 2]));
                if (b is (byte)'/' or (byte)'\\' or (byte)'.' or (byte)';' or (byte)'%' or < 0x20 or 0x7f)
                {
                    problem = "encoded separator, dot, ';', '%' or control character";
                    return null;
                }

                bytes[count++] = b;
                i += 2;
            }
            else if (c is < '!' or > '~' or '\\' or '#')
            {
                problem = "backslash, '#', space, control or non-ASCII character";
                return null;
            }
            else
            {
                bytes[count++] = (byte)c;
            }
        }

        string decoded;
        try
        {
            decoded = StrictUtf8.GetString(bytes, 0, count);
        }
        catch (DecoderFallbackException)
        {
            problem = "percent-escapes that are not UTF-8";
            return null;
        }

        var segments = decoded.Split('/');
        var parameters = false;
        for (var i = 1; i < segments.Length; i++)
        {
            var segment = segments[i];
            var last = i == segments.Length - 1;
            var semicolon = segment.IndexOf(';', StringComparison.Ordinal);
            parameters |= semicolon >= 0;
            var name = semicolon >= 0 ? segment[..semicolon] : segment;
            if ((name.Length == 0 && !(last && semicolon < 0)) || name is "." or "..")
            {
                problem = "empty or dot segment (also before a ';')";
                return null;
            }
        }

        return new RequestPath(decoded, parameters ? string.Join('/', segments.Select(s => s.Split(';', 2)[0])) : null);
    }
}
