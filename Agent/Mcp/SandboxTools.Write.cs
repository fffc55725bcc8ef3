using System.ComponentModel;
using System.Text;
using ModelContextProtocol;
using ModelContextProtocol.Server;

namespace Hive.Agent.Mcp;

internal sealed partial class SandboxTools
{
    public sealed record Written(string path, long bytes, bool created);

    [McpServerTool(Name = "write_file", Title = "Create or overwrite a file", Destructive = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Writes text to a file, replacing it if it exists. Missing parent directories are created. The file appears whole: written to a temporary sibling, then renamed over the target.")]
    public static async Task<Written> WriteFile(
        [Description("Absolute path of the file")] string path,
        [Description("The complete new contents (UTF-8)")] string content,
        CancellationToken cancellationToken = default)
    {
        var file = ToolPaths.Require(path);
        if (content is null)
        {
            throw new McpException("'content' is required");
        }

        return await ToolPaths.GuardAsync(file, async () =>
        {
            if (Directory.Exists(file))
            {
                throw new McpException($"{file} is a directory");
            }

            var created = !File.Exists(file);
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var bytes = Encoding.UTF8.GetBytes(content);
            await ReplaceAsync(file, bytes, cancellationToken);
            return new Written(file, bytes.Length, created);
        });
    }

    public sealed record Edited(string path, int replacements, long bytes);

    [McpServerTool(Name = "edit_file", Title = "Replace text in a file", Destructive = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Replaces an exact piece of text in a file. The text must occur exactly once (say replace_all to replace every occurrence); otherwise nothing changes and the error says how many times it was found.")]
    public static async Task<Edited> EditFile(
        [Description("Absolute path of the file")] string path,
        [Description("The exact text to replace (whitespace and line breaks included)")] string old_text,
        [Description("The replacement text")] string new_text,
        [Description("Replace every occurrence instead of requiring exactly one")] bool replace_all = false,
        CancellationToken cancellationToken = default)
    {
        var file = ToolPaths.Require(path);
        if (string.IsNullOrEmpty(old_text))
        {
            throw new McpException("'old_text' must not be empty");
        }

        return await ToolPaths.GuardAsync(file, async () =>
        {
            var text = await File.ReadAllTextAsync(file, cancellationToken);
            var count = 0;
            for (var at = text.IndexOf(old_text, StringComparison.Ordinal); at >= 0; at = text.IndexOf(old_text, at + old_text.Length, StringComparison.Ordinal))
            {
                count++;
            }

            if (count == 0)
            {
                throw new McpException($"the text to replace was not found in {file}; nothing changed");
            }

            if (count > 1 && !replace_all)
            {
                throw new McpException($"the text to replace occurs {count} times in {file}; give more context to make it unique, or set replace_all; nothing changed");
            }

            var updated = text.Replace(old_text, new_text ?? string.Empty, StringComparison.Ordinal);
            var bytes = Encoding.UTF8.GetBytes(updated);
            await ReplaceAsync(file, bytes, cancellationToken);
            return new Edited(file, count, bytes.Length);
        });
    }

    public sealed record DirectoryCreated(string path, bool created);

    [McpServerTool(Name = "create_directory", Title = "Create a directory", OpenWorld = false, Idempotent = true, UseStructuredContent = true)]
    [Description("Creates a directory and any missing parents (like mkdir -p). Succeeds if it already exists.")]
    public static DirectoryCreated CreateDirectory([Description("Absolute path of the directory")] string path)
    {
        var dir = ToolPaths.Require(path);
        return ToolPaths.Guard(dir, () =>
        {
            if (File.Exists(dir))
            {
                throw new McpException($"{dir} exists and is a file");
            }

            var existed = Directory.Exists(dir);
            Directory.CreateDirectory(dir);
            return new DirectoryCreated(dir, !existed);
        });
    }

    public sealed record Moved(string source, string destination);

    [McpServerTool(Name = "move_file", Title = "Move or rename", Destructive = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Moves or renames a file or directory. Fails if the destination exists, unless overwrite is set (files only).")]
    public static Moved MoveFile(
        [Description("Absolute path of what to move")] string source,
        [Description("Absolute new path")] string destination,
        [Description("Replace an existing destination file")] bool overwrite = false)
    {
        var from = ToolPaths.Require(source, "source");
        var to = ToolPaths.Require(destination, "destination");
        return ToolPaths.Guard(from, () =>
        {
            if (from == "/" || to.StartsWith(from + "/", StringComparison.Ordinal))
            {
                throw new McpException($"cannot move {from} into itself");
            }

            if (Directory.Exists(from))
            {
                if (Path.Exists(to))
                {
                    throw new McpException($"{to} already exists");
                }

                Directory.Move(from, to);
            }
            else if (File.Exists(from))
            {
                if (Directory.Exists(to))
                {
                    throw new McpException($"{to} is a directory; give the full destination path");
                }

                if (File.Exists(to) && !overwrite)
                {
                    throw new McpException($"{to} already exists (set overwrite to replace it)");
                }

                File.Move(from, to, overwrite);
            }
            else
            {
                throw new McpException($"no such file or directory: {from}");
            }

            return new Moved(from, to);
        });
    }

    public sealed record FileInfoResult(string path, string type, long size, string permissions, int uid, int gid, DateTimeOffset modified, DateTimeOffset accessed, DateTimeOffset? created, string? link_target);

    [McpServerTool(Name = "get_file_info", Title = "File metadata", ReadOnly = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Returns a file's metadata without following a final symlink: type, size, permissions, owner, times, link target.")]
    public static FileInfoResult GetFileInfo([Description("Absolute path")] string path)
    {
        var target = ToolPaths.Require(path);
        return ToolPaths.Guard(target, () =>
        {
            if (!LStat(target, out var stat))
            {
                var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                throw new McpException(errno == Hive.Interop.Libc.EACCES ? $"permission denied: {target}" : $"no such file or directory: {target}");
            }

            var info = new FileInfo(target);
            var type = (stat.Mode & 0xF000) switch
            {
                0x8000 => "file",
                0x4000 => "directory",
                0xA000 => "symlink",
                0x1000 => "fifo",
                0xC000 => "socket",
                0x2000 or 0x6000 => "device",
                _ => "other",
            };
            return new FileInfoResult(
                target,
                type,
                stat.Size,
                Convert.ToString(stat.Mode & 0xFFF, 8).PadLeft(4, '0'),
                (int)stat.Uid,
                (int)stat.Gid,
                info.LastWriteTimeUtc,
                info.LastAccessTimeUtc,
                null,
                type == "symlink" ? info.LinkTarget : null);
        });
    }

    private static unsafe bool LStat(string path, out Hive.Interop.Fuse.Stat stat)
    {
        Hive.Interop.Fuse.Stat result;
        var ok = Hive.Interop.Libc.fstatat(Hive.Interop.Libc.AT_FDCWD, path, &result, Hive.Interop.Libc.AT_SYMLINK_NOFOLLOW) == 0;
        stat = result;
        return ok;
    }

    private static async Task ReplaceAsync(string file, byte[] bytes, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(Path.GetDirectoryName(file)!, $".{Path.GetFileName(file)}.hive-{Guid.NewGuid():N}");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                await stream.WriteAsync(bytes, cancellationToken);
                await stream.FlushAsync(cancellationToken);
            }

            if (File.Exists(file))
            {
                File.SetUnixFileMode(temp, File.GetUnixFileMode(file));
            }

            File.Move(temp, file, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }
}
