using System.Text;

namespace Hive.Cli;

/// <summary>Joins argv into one <c>/bin/sh -c</c> command that yields exactly those arguments.</summary>
internal static class ShellQuote
{
    public static string Join(IEnumerable<string> args) => string.Join(' ', args.Select(Quote));

    public static string Quote(string arg)
    {
        if (arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c, StringComparison.Ordinal)))
        {
            return arg;
        }

        var sb = new StringBuilder("'");
        foreach (var c in arg)
        {
            sb.Append(c == '\'' ? "'\\''" : c.ToString());
        }

        return sb.Append('\'').ToString();
    }
}
