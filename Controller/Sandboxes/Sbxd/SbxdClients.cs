using System.Collections.Concurrent;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Controller.Sandboxes.Sbxd;

/// <summary>One long-lived gRPC channel per sandbox to its Sbxd's Unix socket, plus typed calls.</summary>
internal sealed class SbxdClients(SbxdLauncher launcher) : IDisposable
{
    private const string Service = "/hive.v1.Sandbox/";
    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);

    public Task<SandboxStatus> GetStatusAsync(string name, TimeSpan timeout, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<GetStatusRequest, SandboxStatus>(Service + "GetStatus", new GetStatusRequest(), new CallOptions(timeout, cancellationToken));

    public Task<ExecResponse> ExecAsync(string name, ExecRequest request, TimeSpan? timeout, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<ExecRequest, ExecResponse>(Service + "Exec", request, new CallOptions(timeout, cancellationToken));

    public IAsyncEnumerable<FileChunk> ReadFileAsync(string name, string path, CancellationToken cancellationToken) =>
        Channel(name).ServerStreamingAsync<ReadFileRequest, FileChunk>(Service + "ReadFile", new ReadFileRequest { Path = path }, new CallOptions(null, cancellationToken));

    public Task<WriteFileResponse> WriteFileAsync(string name, IAsyncEnumerable<WriteFileRequest> requests, CancellationToken cancellationToken) =>
        Channel(name).ClientStreamingAsync<WriteFileRequest, WriteFileResponse>(Service + "WriteFile", requests, new CallOptions(null, cancellationToken));

    public Task<ListFilesResponse> ListFilesAsync(string name, string path, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<ListFilesRequest, ListFilesResponse>(Service + "ListFiles", new ListFilesRequest { Path = path }, new CallOptions(TimeSpan.FromMinutes(5), cancellationToken));

    public Task<DestroyResponse> DestroyAsync(string name, TimeSpan timeout, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<DestroyRequest, DestroyResponse>(Service + "Destroy", new DestroyRequest(), new CallOptions(timeout, cancellationToken));

    public void Forget(string name)
    {
        if (_channels.TryRemove(name, out var channel))
        {
            channel.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values)
        {
            channel.Dispose();
        }

        _channels.Clear();
    }

    private GrpcChannel Channel(string name) =>
        _channels.GetOrAdd(name, static (n, l) => GrpcChannel.ForUnixSocket(l.SocketPath(n)), launcher);
}
