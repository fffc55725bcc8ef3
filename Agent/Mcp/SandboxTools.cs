using System.ComponentModel;
using System.Text;
using Hive.Agent.Exec;
using Hive.Protos.V1;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Hive.Agent.Mcp;

/// <summary>
/// The sandbox's MCP tools. They run in hive-agent inside the container: commands are confined
/// like any other, and every file access goes through the workspace mounts (ACLs, audit). No tool
/// ever builds a shell command out of a path; only <c>exec</c> runs a shell, with the caller's text.
/// </summary>
[McpServerToolType]
internal sealed partial class SandboxTools(ExecService exec)
{
    private const int MaxTextBytes = 10 * 1024 * 1024;

    public sealed record ExecResult(int exit_code, string stdout, string stderr, long duration_ms, bool timed_out, bool stdout_truncated, bool stderr_truncated);

    [McpServerTool(Name = "exec", Title = "Run a shell command", Destructive = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Runs a command with /bin/sh -c inside the sandbox and returns its exit code, stdout, stderr (each capped at 1 MiB) and duration. A non-zero exit code is a result, not a tool error.")]
    public async Task<ExecResult> Exec(
        [Description("The shell command line, e.g. \"ls -la /workspace && python3 main.py\"")] string command,
        [Description("Absolute working directory (default /)")] string? cwd = null,
        [Description("Seconds before the command's whole process group is killed (default 120, at most 3600)")] double timeout_seconds = 120,
        [Description("Extra environment variables for this command")] Dictionary<string, string>? env = null,
        CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(command))
        {
            throw new McpException("'command' is required");
        }

        if (double.IsNaN(timeout_seconds) || timeout_seconds <= 0 || timeout_seconds > 3600)
        {
            throw new McpException("'timeout_seconds' must be between 0 and 3600");
        }

        var request = new ExecRequest { Command = command, Cwd = cwd is null ? string.Empty : ToolPaths.Require(cwd, "cwd"), TimeoutMs = (uint)Math.Ceiling(timeout_seconds * 1000) };
        foreach (var (key, value) in env ?? [])
        {
            if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
            {
                throw new McpException($"invalid environment variable '{key}'");
            }

            request.Env[key] = value;
        }

        ExecResponse response;
        try
        {
            response = await exec.RunAsync(request, cancellationToken);
        }
        catch (Hive.Wire.RpcException ex)
        {
            throw new McpException(ex.Message);
        }

        return new ExecResult(response.ExitCode, response.Stdout.ToStringUtf8(), response.Stderr.ToStringUtf8(), (long)(response.DurationUs / 1000), response.TimedOut, response.StdoutTruncated, response.StderrTruncated);
    }

    [McpServerTool(Name = "read_file", Title = "Read a text file", ReadOnly = true, OpenWorld = false)]
    [Description("Returns the contents of a UTF-8 text file. With head or tail, only the first or last N lines. For images and audio use read_media_file.")]
    public static async Task<string> ReadFile(
        [Description("Absolute path of the file")] string path,
        [Description("Only the first N lines")] int? head = null,
        [Description("Only the last N lines")] int? tail = null,
        CancellationToken cancellationToken = default)
    {
        var file = ToolPaths.Require(path);
        if (head is not null && tail is not null)
        {
            throw new McpException("give either 'head' or 'tail', not both");
        }

        if (head is < 0 || tail is < 0)
        {
            throw new McpException("'head' and 'tail' must not be negative");
        }

        return await ToolPaths.GuardAsync(file, async () =>
        {
            if (Directory.Exists(file))
            {
                throw new McpException($"{file} is a directory; use list_directory");
            }

            if (head is { } h)
            {
                var lines = new List<string>(Math.Min(h, 10000));
                using var reader = new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
                while (lines.Count < h && await reader.ReadLineAsync(cancellationToken) is { } line)
                {
                    lines.Add(line);
                }

                return string.Join('\n', lines);
            }

            var info = new FileInfo(file);
            if (tail is null && info.Length > MaxTextBytes)
            {
                throw new McpException($"{file} is {ToolPaths.HumanSize(info.Length)}; read at most {ToolPaths.HumanSize(MaxTextBytes)} at once (use head or tail)");
            }

            var bytes = tail is null ? await File.ReadAllBytesAsync(file, cancellationToken) : await ReadTailAsync(file, tail.Value, cancellationToken);
            if (LooksBinary(bytes))
            {
                throw new McpException($"{file} is not a text file; use read_media_file for images and audio");
            }

            return Encoding.UTF8.GetString(bytes);
        });
    }

    public sealed record FileContent(string path, string? content, string? error);

    public sealed record MultipleFiles(IReadOnlyList<FileContent> files);

    [McpServerTool(Name = "read_multiple_files", Title = "Read several text files", ReadOnly = true, OpenWorld = false, UseStructuredContent = true)]
    [Description("Reads several text files at once. A file that cannot be read gets an error entry; the others are still returned.")]
    public static async Task<MultipleFiles> ReadMultipleFiles(
        [Description("Absolute paths of the files (at most 100)")] string[] paths,
        CancellationToken cancellationToken = default)
    {
        if (paths is null || paths.Length == 0)
        {
            throw new McpException("'paths' must list at least one file");
        }

        if (paths.Length > 100)
        {
            throw new McpException("at most 100 files at once");
        }

        var results = new List<FileContent>();
        foreach (var path in paths)
        {
            try
            {
                results.Add(new FileContent(path, await ReadFile(path, cancellationToken: cancellationToken), null));
            }
            catch (McpException ex)
            {
                results.Add(new FileContent(path, null, ex.Message));
            }
        }

        return new MultipleFiles(results);
    }

    [McpServerTool(Name = "read_media_file", Title = "Read an image or audio file", ReadOnly = true, OpenWorld = false)]
    [Description("Returns an image or audio file as MCP image/audio content (base64) with its MIME type, detected from the file's content.")]
    public static async Task<ContentBlock> ReadMediaFile(
        [Description("Absolute path of the image or audio file (at most 20 MiB)")] string path,
        CancellationToken cancellationToken = default)
    {
        var file = ToolPaths.Require(path);
        return await ToolPaths.GuardAsync<ContentBlock>(file, async () =>
        {
            var info = new FileInfo(file);
            if (!info.Exists)
            {
                throw new McpException(Directory.Exists(file) ? $"{file} is a directory" : $"no such file: {file}");
            }

            if (info.Length > 20 * 1024 * 1024)
            {
                throw new McpException($"{file} is {ToolPaths.HumanSize(info.Length)}; media files up to 20 MiB are returned");
            }

            var bytes = await File.ReadAllBytesAsync(file, cancellationToken);
            var mime = MediaTypes.Detect(bytes, file);
            return mime switch
            {
                null => throw new McpException($"{file} is not an image or audio file this tool recognises (PNG, JPEG, GIF, WebP, BMP, ICO, AVIF, SVG, MP3, WAV, OGG, FLAC, M4A)"),
                _ when mime.StartsWith("image/", StringComparison.Ordinal) => ImageContentBlock.FromBytes(bytes, mime),
                _ when mime.StartsWith("audio/", StringComparison.Ordinal) => AudioContentBlock.FromBytes(bytes, mime),
                _ => throw new McpException($"{file} is {mime}, not an image or audio file"),
            };
        });
    }

    private static async Task<byte[]> ReadTailAsync(string file, int lines, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.Asynchronous);
        var length = stream.Length;
        var chunk = 64 * 1024;
        var position = length;
        var buffer = new List<byte[]>();
        var newlines = 0;
        while (position > 0 && newlines <= lines)
        {
            var size = (int)Math.Min(chunk, position);
            position -= size;
            var part = new byte[size];
            stream.Position = position;
            await stream.ReadExactlyAsync(part, cancellationToken);
            buffer.Insert(0, part);
            newlines += part.Count(b => b == (byte)'\n');
            if (length - position > MaxTextBytes)
            {
                break;
            }
        }

        var all = buffer.SelectMany(b => b).ToArray();
        var end = all.Length > 0 && all[^1] == (byte)'\n' ? all.Length - 1 : all.Length;
        var start = end;
        for (var seen = 0; start > 0; start--)
        {
            if (all[start - 1] == (byte)'\n' && ++seen == lines)
            {
                break;
            }
        }

        return lines == 0 ? [] : all[start..end];
    }

    private static bool LooksBinary(ReadOnlySpan<byte> bytes) => bytes[..Math.Min(bytes.Length, 8000)].Contains((byte)0);
}
