using System.Runtime.CompilerServices;
using Google.Protobuf;
using Hive.Controller.Api.Access;
using Hive.Controller.Sandboxes;
using Hive.Controller.Sandboxes.Store;
using Hive.Protos.V1;
using Hive.Wire;
using Microsoft.AspNetCore.Http.Features;

namespace Hive.Controller.Api;

/// <summary>
/// Files in a sandbox: upload and download stream in 64 KiB chunks end to end (HTTP body ⇄ gRPC
/// stream ⇄ agent), so a 1 GiB file never sits in memory; recursive listing.
/// </summary>
internal static class FileEndpoints
{
    private const int ChunkSize = 64 * 1024;

    public static void MapFileEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPut("/api/v1/hiveboxes/{id}/files", async (string id, HttpContext http, SandboxManager manager, SandboxStore store) =>
        {
            var name = RouteNames.Require(id);
            var path = RequirePath(http.Request.Query["path"]);
            store.Get(name);
            if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            {
                limit.MaxRequestBodySize = null; // uploads stream; the sandbox's disk is the bound
            }

            var written = await manager.CallAsync(name, c => c.WriteFileAsync(name, Chunks(http.Request.Body, path, http.RequestAborted), http.RequestAborted));
            return Results.Json(new FileWritten(written.Path, written.Size), ApiJson.Options);
        }).AcceptsRawBody(); // a file is bytes of any type

        app.MapGet("/api/v1/hiveboxes/{id}/files", async (string id, HttpContext http, SandboxManager manager, SandboxStore store) =>
        {
            var name = RouteNames.Require(id);
            var path = RequirePath(http.Request.Query["path"]);
            store.Get(name);

            // The first chunk is awaited before any byte is sent, so "not found" is still a 404, not a broken 200.
            var first = await manager.CallAsync(name, async c =>
            {
                var enumerator = c.ReadFileAsync(name, path, http.RequestAborted).GetAsyncEnumerator(http.RequestAborted);
                var hasFirst = await enumerator.MoveNextAsync();
                return (enumerator, hasFirst);
            });
            await using var chunks = first.enumerator;
            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.ContentType = "application/octet-stream";
            Forwarding.HeaderPolicy.MarkSandboxContent(http.Response); // the sandbox wrote it: never active content of this origin
            if (first.hasFirst)
            {
                var fileName = Path.GetFileName(path);
                if (fileName.Length > 0 && fileName.All(ch => ch is > ' ' and < (char)127 and not '"' and not '\\'))
                {
                    http.Response.Headers.ContentDisposition = $"attachment; filename=\"{fileName}\"";
                }

                await http.Response.Body.WriteAsync(chunks.Current.Data.Memory, http.RequestAborted);
                while (await chunks.MoveNextAsync())
                {
                    await http.Response.Body.WriteAsync(chunks.Current.Data.Memory, http.RequestAborted);
                }
            }

            return Results.Empty;
        });

        app.MapGet("/api/v1/hiveboxes/{id}/files/list", async (string id, HttpContext http, SandboxManager manager, SandboxStore store) =>
        {
            var name = RouteNames.Require(id);
            var raw = http.Request.Query["path"];
            var path = raw.Count == 0 || string.IsNullOrEmpty(raw[0]) ? "/" : RequirePath(raw);
            store.Get(name);
            ListFilesResponse listing;
            try
            {
                listing = await manager.CallAsync(name, c => c.ListFilesAsync(name, path, http.RequestAborted));
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.FailedPrecondition)
            {
                // Seed 003: "500 if path is not a directory".
                throw new ApiException(StatusCodes.Status500InternalServerError, ex.Detail);
            }

            var entries = listing.Entries.Select(e => new FileEntryView(
                e.Name,
                e.Path,
                e.Type switch
                {
                    EntryType.File => "file",
                    EntryType.Directory => "directory",
                    EntryType.Symlink => "symlink",
                    _ => "other",
                },
                e.Type == EntryType.File ? e.Size : null)).ToList();
            return Results.Json(new FileListView(listing.Path, entries, entries.Count, listing.Truncated), ApiJson.Options);
        });
    }

    private static string RequirePath(Microsoft.Extensions.Primitives.StringValues values)
    {
        if (values.Count == 0 || string.IsNullOrEmpty(values[0]))
        {
            throw ApiException.BadRequest("query parameter 'path' is required");
        }

        if (values.Count > 1)
        {
            throw ApiException.BadRequest("query parameter 'path' must be given once");
        }

        var path = values[0]!;
        if (!path.StartsWith('/'))
        {
            throw ApiException.BadRequest($"'path' must be absolute (start with '/'): '{path}'");
        }

        if (path.Contains('\0', StringComparison.Ordinal) || path.Length > 4096)
        {
            throw ApiException.BadRequest("'path' contains NUL or is longer than 4096 characters");
        }

        return path;
    }

    private static async IAsyncEnumerable<WriteFileRequest> Chunks(Stream body, string path, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var buffer = new byte[ChunkSize];
        var first = new WriteFileRequest { Header = new WriteFileHeader { Path = path, CreateParents = true } };
        while (true)
        {
            var filled = 0;
            while (filled < buffer.Length)
            {
                var n = await body.ReadAsync(buffer.AsMemory(filled), cancellationToken);
                if (n == 0)
                {
                    break;
                }

                filled += n;
            }

            if (first is not null)
            {
                first.Data = ByteString.CopyFrom(buffer, 0, filled);
                yield return first;
                first = null;
            }
            else if (filled > 0)
            {
                yield return new WriteFileRequest { Data = ByteString.CopyFrom(buffer, 0, filled) };
            }

            if (filled < buffer.Length)
            {
                yield break;
            }
        }
    }
}
