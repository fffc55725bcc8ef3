using Hive.Policy.Fs;

namespace Hive.Agent.Mcp;

/// <summary>
/// The common subset of .gitignore: blank lines and comments skipped, <c>!</c> re-includes, a
/// trailing <c>/</c> matches directories only, a pattern with an inner <c>/</c> is anchored to
/// its file's directory, other patterns match a name at any depth; <c>*</c>, <c>**</c>, <c>?</c>.
/// Character classes are not supported (such lines are ignored). <c>.git</c> is always ignored.
/// </summary>
internal sealed class GitIgnore
{
    private readonly List<(PathGlob Glob, bool Negate, bool DirectoryOnly)> _rules = [];

    public void AddFile(string directory)
    {
        var file = Path.Combine(directory, ".gitignore");
        string[] lines;
        try
        {
            if (!File.Exists(file))
            {
                return;
            }

            lines = File.ReadAllLines(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (var raw in lines)
        {
            var line = raw.TrimEnd();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var negate = line.StartsWith('!');
            if (negate)
            {
                line = line[1..];
            }

            var directoryOnly = line.EndsWith('/');
            line = line.TrimEnd('/');
            if (line.Length == 0)
            {
                continue;
            }

            var anchored = line.Contains('/', StringComparison.Ordinal);
            var pattern = (directory == "/" ? string.Empty : directory) + (anchored ? "/" + line.TrimStart('/') : "/**/" + line);
            if (PathGlob.TryParse(pattern, out var glob, out _))
            {
                _rules.Add((glob!, negate, directoryOnly));
            }
        }
    }

    public bool IsIgnored(string path, bool isDirectory)
    {
        if (Path.GetFileName(path) == ".git")
        {
            return true;
        }

        var ignored = false;
        foreach (var (glob, negate, directoryOnly) in _rules)
        {
            if ((!directoryOnly || isDirectory) && glob.IsMatch(path))
            {
                ignored = !negate;
            }
        }

        return ignored;
    }
}
