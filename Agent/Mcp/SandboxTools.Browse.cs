using System.ComponentModel;
using System.Text;
using System.Text.RegularExpressions;
using Hive.Policy.Fs;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace Hive.Agent.Mcp;

internal sealed partial class SandboxTools
{
    private const int MaxEntries = 10000;

    public sealed record Entry(string name, string type, long? size);

    public sealed record Listing(string path, IReadOnlyList<Entry> entries, bool truncated);

    [McpServerTool(Name = "list_directory", Title = "List a directory", ReadOnly = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Lists the entries of one directory (not recursive), directories first, each with its type. Entries the workspace's ACLs deny are not shown.")]
    public static Listing ListDirectory([Description("Absolute path of the directory")] string path)
    {
        var dir = ToolPaths.Require(path);
        return ToolPaths.Guard(dir, () => List(dir, sizes: false));
    }

    public sealed record SizedEntry(string name, string type, long? size, string? size_human);

    public sealed record SizedListing(string path, IReadOnlyList<SizedEntry> entries, bool truncated, int files, int directories, long total_bytes, string total);

    [McpServerTool(Name = "list_directory_with_sizes", Title = "List a directory with sizes", ReadOnly = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Lists one directory with each file's size (human-readable in the text, bytes in the structured result) and totals.")]
    public static SizedListing ListDirectoryWithSizes(
        [Description("Absolute path of the directory")] string path,
        [Description("Sort by \"name\" (default) or \"size\" (largest first)")] string sort_by = "name")
    {
        var dir = ToolPaths.Require(path);
        if (sort_by is not ("name" or "size"))
        {
            throw new McpException("'sort_by' must be \"name\" or \"size\"");
        }

        return ToolPaths.Guard(dir, () =>
        {
            var listing = List(dir, sizes: true);
            var entries = sort_by == "size" ? listing.entries.OrderByDescending(e => e.size ?? -1).ThenBy(e => e.name, StringComparer.Ordinal).ToList() : listing.entries;
            var files = entries.Count(e => e.type == "file");
            var total = entries.Sum(e => e.size ?? 0);
            var sized = entries.Select(e => new SizedEntry(e.name, e.type, e.size, e.size is { } n ? ToolPaths.HumanSize(n) : null)).ToList();
            return new SizedListing(dir, sized, listing.truncated, files, entries.Count(e => e.type == "directory"), total, ToolPaths.HumanSize(total));
        });
    }

    public sealed record TreeNode(string name, string type, IReadOnlyList<TreeNode>? children);

    [McpServerTool(Name = "directory_tree", Title = "Directory tree", ReadOnly = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("A recursive tree of a directory as JSON (name, type, children), symlinks not followed, at most 10,000 entries.")]
    public static TreeNode DirectoryTree(
        [Description("Absolute path of the directory")] string path,
        [Description("How many levels deep to go (default 10)")] int max_depth = 10,
        [Description("Leave out what .gitignore files ignore (and .git)")] bool respect_gitignore = false)
    {
        var dir = ToolPaths.Require(path);
        if (max_depth is < 1 or > 100)
        {
            throw new McpException("'max_depth' must be between 1 and 100");
        }

        return ToolPaths.Guard(dir, () =>
        {
            if (!Directory.Exists(dir))
            {
                throw new McpException(File.Exists(dir) ? $"{dir} is not a directory" : $"no such directory: {dir}");
            }

            var budget = MaxEntries;
            var ignore = respect_gitignore ? new GitIgnore() : null;
            return Tree(dir, Path.GetFileName(dir) is { Length: > 0 } n ? n : "/", max_depth, ignore, ref budget);
        });
    }

    public sealed record Match(string path, int line, string text);

    public sealed record SearchResult(IReadOnlyList<Match> matches, int files_searched, bool truncated);

    [McpServerTool(Name = "search_files", Title = "Search file contents (grep)", ReadOnly = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Searches text files under a directory for a regular expression (like grep -rn), optionally only in files whose name matches a glob. Binary files and files over 10 MiB are skipped.")]
    public static SearchResult SearchFiles(
        [Description("Regular expression (.NET syntax), e.g. \"TODO|FIXME\" or \"def \\\\w+\\\\(\"")] string pattern,
        [Description("Absolute directory to search (default /workspace if it exists, else /)")] string? path = null,
        [Description("Only files whose name matches this glob, e.g. \"*.py\"")] string? file_pattern = null,
        [Description("Ignore case")] bool ignore_case = false,
        [Description("Stop after this many matching lines (default 200, at most 10,000)")] int max_results = 200,
        [Description("Leave out what .gitignore files ignore (and .git)")] bool respect_gitignore = false)
    {
        if (string.IsNullOrEmpty(pattern))
        {
            throw new McpException("'pattern' is required");
        }

        if (max_results is < 1 or > MaxEntries)
        {
            throw new McpException("'max_results' must be between 1 and 10000");
        }

        Regex regex;
        try
        {
            regex = new Regex(pattern, (ignore_case ? RegexOptions.IgnoreCase : RegexOptions.None) | RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
        }
        catch (ArgumentException ex)
        {
            throw new McpException($"invalid regular expression: {ex.Message}");
        }

        PathGlob? nameGlob = null;
        if (file_pattern is not null && !PathGlob.TryParse("/" + file_pattern.TrimStart('/'), out nameGlob, out var globError))
        {
            throw new McpException($"invalid file_pattern: {globError}");
        }

        var root = ToolPaths.Require(path ?? (Directory.Exists("/workspace") ? "/workspace" : "/"));
        var matches = new List<Match>();
        var searched = 0;
        var truncated = false;
        foreach (var file in Walk(root, respect_gitignore))
        {
            if (nameGlob is not null && !nameGlob.IsMatch("/" + Path.GetFileName(file)))
            {
                continue;
            }

            try
            {
                var info = new FileInfo(file);
                if (info.Length > MaxTextBytes)
                {
                    continue;
                }

                var bytes = File.ReadAllBytes(file);
                if (LooksBinary(bytes))
                {
                    continue;
                }

                searched++;
                var number = 0;
                foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
                {
                    number++;
                    if (regex.IsMatch(line))
                    {
                        matches.Add(new Match(file, number, line.Length > 500 ? line[..500] + "…" : line.TrimEnd('\r')));
                        if (matches.Count >= max_results)
                        {
                            truncated = true;
                            return new SearchResult(matches, searched, truncated);
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or RegexMatchTimeoutException)
            {
                // Unreadable (or denied by the workspace's ACLs): skipped, like grep -s.
            }
        }

        return new SearchResult(matches, searched, truncated);
    }

    public sealed record GlobResult(IReadOnlyList<string> paths, bool truncated);

    [McpServerTool(Name = "glob", Title = "Find files by pattern", ReadOnly = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Finds files whose path below a directory matches a glob: * within a name, ** across directories, ? one character — e.g. \"**/*.ts\", \"*.json\", \"src/**/test_*.py\".")]
    public static GlobResult Glob(
        [Description("The pattern, relative to path")] string pattern,
        [Description("Absolute directory to search from (default /workspace if it exists, else /)")] string? path = null,
        [Description("Leave out what .gitignore files ignore (and .git)")] bool respect_gitignore = false,
        [Description("At most this many results (default 1000, at most 10,000)")] int max_results = 1000)
    {
        if (string.IsNullOrEmpty(pattern))
        {
            throw new McpException("'pattern' is required");
        }

        if (max_results is < 1 or > MaxEntries)
        {
            throw new McpException("'max_results' must be between 1 and 10000");
        }

        var root = ToolPaths.Require(path ?? (Directory.Exists("/workspace") ? "/workspace" : "/"));
        if (!PathGlob.TryParse((root == "/" ? string.Empty : root) + "/" + pattern.TrimStart('/'), out var glob, out var error))
        {
            throw new McpException($"invalid pattern: {error}");
        }

        var paths = new List<string>();
        foreach (var file in Walk(root, respect_gitignore, includeDirectories: true))
        {
            if (glob!.IsMatch(file))
            {
                paths.Add(file);
                if (paths.Count >= max_results)
                {
                    return new GlobResult(paths, true);
                }
            }
        }

        return new GlobResult(paths, false);
    }

    private static Listing List(string dir, bool sizes)
    {
        if (!Directory.Exists(dir))
        {
            throw new McpException(File.Exists(dir) ? $"{dir} is not a directory" : $"no such directory: {dir}");
        }

        var entries = new List<Entry>();
        var truncated = false;
        foreach (var info in new DirectoryInfo(dir).EnumerateFileSystemInfos("*", new EnumerationOptions { IgnoreInaccessible = true, AttributesToSkip = 0 }))
        {
            if (entries.Count >= MaxEntries)
            {
                truncated = true;
                break;
            }

            var type = info.LinkTarget is not null ? "symlink" : info is DirectoryInfo ? "directory" : "file";
            entries.Add(new Entry(info.Name, type, sizes && info is FileInfo { LinkTarget: null } f ? f.Length : null));
        }

        entries.Sort((a, b) => (a.type == "directory") != (b.type == "directory") ? (a.type == "directory" ? -1 : 1) : string.CompareOrdinal(a.name, b.name));
        return new Listing(dir, entries, truncated);
    }

    private static TreeNode Tree(string dir, string name, int depth, GitIgnore? ignore, ref int budget)
    {
        ignore?.AddFile(dir);
        var children = new List<TreeNode>();
        if (depth > 0)
        {
            foreach (var info in new DirectoryInfo(dir).EnumerateFileSystemInfos("*", new EnumerationOptions { IgnoreInaccessible = true, AttributesToSkip = 0 }).OrderBy(i => i.Name, StringComparer.Ordinal))
            {
                if (budget-- <= 0)
                {
                    break;
                }

                var isDirectory = info is DirectoryInfo && info.LinkTarget is null;
                if (ignore?.IsIgnored(info.FullName, isDirectory) == true)
                {
                    continue;
                }

                children.Add(isDirectory
                    ? Tree(info.FullName, info.Name, depth - 1, ignore, ref budget)
                    : new TreeNode(info.Name, info.LinkTarget is not null ? "symlink" : "file", null));
            }
        }

        return new TreeNode(name, "directory", children);
    }

    /// <summary>Every file (and optionally directory) below <paramref name="root"/>; symlinks not followed; /proc, /sys, /dev skipped.</summary>
    private static IEnumerable<string> Walk(string root, bool respectGitIgnore, bool includeDirectories = false)
    {
        if (!Directory.Exists(root))
        {
            throw new McpException(File.Exists(root) ? $"{root} is not a directory" : $"no such directory: {root}");
        }

        var ignore = respectGitIgnore ? new GitIgnore() : null;
        var pending = new Stack<string>();
        pending.Push(root);
        var seen = 0;
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            ignore?.AddFile(dir);
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = new DirectoryInfo(dir).EnumerateFileSystemInfos("*", new EnumerationOptions { IgnoreInaccessible = true, AttributesToSkip = 0 }).OrderBy(i => i.Name, StringComparer.Ordinal).ToList();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            var subdirectories = new List<string>();
            foreach (var info in entries)
            {
                if (++seen > 200_000)
                {
                    yield break;
                }

                var isDirectory = info is DirectoryInfo && info.LinkTarget is null;
                if (ignore?.IsIgnored(info.FullName, isDirectory) == true || (dir == "/" && info.Name is "proc" or "sys" or "dev" or ".hive"))
                {
                    continue;
                }

                if (isDirectory)
                {
                    subdirectories.Add(info.FullName);
                    if (includeDirectories)
                    {
                        yield return info.FullName;
                    }
                }
                else if (info is FileInfo)
                {
                    yield return info.FullName;
                }
            }

            for (var i = subdirectories.Count - 1; i >= 0; i--)
            {
                pending.Push(subdirectories[i]);
            }
        }
    }
}
