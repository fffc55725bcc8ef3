using Google.Protobuf;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Agent.Files;

/// <summary>
/// Files inside the container. The agent is the container's own process, so every path resolves
/// against the container's root: `..` stops at "/" and symlinks point into the container, never
/// to the host. Reads and writes stream in 64 KiB chunks.
/// </summary>
internal sealed class FileService
{
    public const int ChunkSize = 64 * 1024;
    public const int DefaultMaxEntries = 100_000;

    /// <summary>Pseudo file systems and the agent's own bundle are not part of a listing of "/".</summary>
    private static readonly HashSet<string> SkippedFromRoot = new(StringComparer.Ordinal) { "/proc", "/sys", "/dev", "/.hive" };

    public async Task ReadAsync(ReadFileRequest request, IServerStreamWriter<FileChunk> writer, CallContext context)
    {
        var path = RequirePath(request.Path);
        if (Directory.Exists(path))
        {
            throw new RpcException(StatusCode.FailedPrecondition, $"'{path}' is a directory");
        }

        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Map(ex, path);
        }

        await using (stream)
        {
            var buffer = new byte[ChunkSize];
            var first = true;
            while (true)
            {
                var n = await stream.ReadAsync(buffer, context.CancellationToken);
                if (n == 0 && !first)
                {
                    return;
                }

                var chunk = new FileChunk { Data = ByteString.CopyFrom(buffer, 0, n) };
                if (first)
                {
                    chunk.Size = stream.CanSeek ? (ulong)stream.Length : 0;
                    first = false;
                }

                await writer.WriteAsync(chunk, context.CancellationToken);
                if (n == 0)
                {
                    return;
                }
            }
        }
    }

    public async Task<WriteFileResponse> WriteAsync(IAsyncEnumerable<WriteFileRequest> requests, CallContext context)
    {
        await using var messages = requests.GetAsyncEnumerator(context.CancellationToken);
        if (!await messages.MoveNextAsync() || messages.Current.Header is null)
        {
            throw new RpcException(StatusCode.InvalidArgument, "the first message must carry the header");
        }

        var header = messages.Current.Header;
        var path = RequirePath(header.Path);
        var directory = Path.GetDirectoryName(path) ?? "/";
        if (Directory.Exists(path))
        {
            throw new RpcException(StatusCode.FailedPrecondition, $"'{path}' is a directory");
        }

        try
        {
            if (header.CreateParents)
            {
                Directory.CreateDirectory(directory);
            }
            else if (!Directory.Exists(directory))
            {
                throw new RpcException(StatusCode.NotFound, $"directory '{directory}' does not exist");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw Map(ex, directory);
        }

        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.hive-{Guid.NewGuid():N}");
        var mode = header.Mode == 0 ? (UnixFileMode)0b110_100_100 : (UnixFileMode)(header.Mode & 0xfff);
        long size = 0;
        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 0, UnixCreateMode = mode };
            await using (var output = new FileStream(temp, options))
            {
                var data = messages.Current.Data;
                while (true)
                {
                    if (!data.IsEmpty)
                    {
                        await output.WriteAsync(data.Memory, context.CancellationToken);
                        size += data.Length;
                    }

                    if (!await messages.MoveNextAsync())
                    {
                        break;
                    }

                    data = messages.Current.Data;
                }

                output.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
            return new WriteFileResponse { Path = path, Size = (ulong)size };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            TryDelete(temp);
            throw ex is OperationCanceledException ? new RpcException(StatusCode.Cancelled, "upload cancelled") : Map(ex, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public Task<ListFilesResponse> ListAsync(ListFilesRequest request, CallContext context)
    {
        var root = string.IsNullOrEmpty(request.Path) ? "/" : RequirePath(request.Path);
        if (!Directory.Exists(root))
        {
            throw File.Exists(root)
                ? new RpcException(StatusCode.FailedPrecondition, $"'{root}' is not a directory")
                : new RpcException(StatusCode.NotFound, $"directory '{root}' not found");
        }

        var max = request.MaxEntries == 0 ? DefaultMaxEntries : (int)request.MaxEntries;
        var response = new ListFilesResponse { Path = root };
        var pending = new Stack<string>();
        pending.Push(root);
        var options = new EnumerationOptions { RecurseSubdirectories = false, IgnoreInaccessible = true, AttributesToSkip = 0, ReturnSpecialDirectories = false };
        while (pending.Count > 0)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            var directory = pending.Pop();
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = new DirectoryInfo(directory).EnumerateFileSystemInfos("*", options).OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue;
            }

            var subdirectories = new List<string>();
            foreach (var entry in entries)
            {
                var full = entry.FullName;
                if (root == "/" && SkippedFromRoot.Contains(full))
                {
                    continue;
                }

                if (response.Entries.Count >= max)
                {
                    response.Truncated = true;
                    return Task.FromResult(response);
                }

                var type = entry.LinkTarget is not null ? EntryType.Symlink
                    : entry is DirectoryInfo ? EntryType.Directory
                    : (entry.Attributes & (FileAttributes.Device | FileAttributes.System)) != 0 ? EntryType.Other
                    : EntryType.File;
                response.Entries.Add(new FileEntry
                {
                    Name = entry.Name,
                    Path = full,
                    Type = type,
                    Size = entry is FileInfo file && type == EntryType.File ? (ulong)file.Length : 0,
                    Mode = (uint)entry.UnixFileMode,
                    MtimeUnixMs = new DateTimeOffset(entry.LastWriteTimeUtc).ToUnixTimeMilliseconds(),
                });
                if (type == EntryType.Directory)
                {
                    subdirectories.Add(full);
                }
            }

            for (var i = subdirectories.Count - 1; i >= 0; i--)
            {
                pending.Push(subdirectories[i]);
            }
        }

        return Task.FromResult(response);
    }

    /// <summary>Absolute, NUL-free, normalized ("/a/../b" → "/b"; ".." at the root stays at the root).</summary>
    internal static string RequirePath(string path)
    {
        if (string.IsNullOrEmpty(path) || !path.StartsWith('/'))
        {
            throw new RpcException(StatusCode.InvalidArgument, $"path must be absolute: '{path}'");
        }

        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new RpcException(StatusCode.InvalidArgument, "path must not contain NUL");
        }

        var full = Path.GetFullPath(path);
        return full.Length > 1 ? full.TrimEnd('/') : full;
    }

    private static RpcException Map(Exception ex, string path) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => new RpcException(StatusCode.NotFound, $"'{path}' not found"),
        UnauthorizedAccessException => new RpcException(StatusCode.PermissionDenied, $"permission denied: '{path}'"),
        IOException io when io.HResult == 30 || io.Message.Contains("Read-only", StringComparison.OrdinalIgnoreCase) => new RpcException(StatusCode.FailedPrecondition, $"read-only file system: '{path}'"),
        IOException io when io.Message.Contains("No space", StringComparison.OrdinalIgnoreCase) => new RpcException(StatusCode.ResourceExhausted, $"no space left writing '{path}'"),
        _ => new RpcException(StatusCode.FailedPrecondition, $"'{path}': {ex.Message}"),
    };

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
