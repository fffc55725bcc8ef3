using System.Collections.Concurrent;
using Hive.Interop;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Controller.Sandboxes.Sbxd;

/// <summary>One long-lived gRPC channel per sandbox to its Sbxd's Unix socket, plus typed calls.</summary>
internal sealed class SbxdClients(SbxdLauncher launcher) : IDisposable
{
    private const string Service = "/hive.v1.Sandbox/";
    private const string AgentService = "/hive.v1.Agent/";
    private readonly ConcurrentDictionary<string, GrpcChannel> _channels = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, GrpcChannel> _agentChannels = new(StringComparer.Ordinal);

    public Task<SandboxStatus> GetStatusAsync(string name, TimeSpan timeout, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<GetStatusRequest, SandboxStatus>(Service + "GetStatus", new GetStatusRequest(), new CallOptions(timeout, cancellationToken));

    /// <summary>
    /// Exec goes straight to the agent's socket (in the sandbox's host-only state dir): one process
    /// hop fewer than through Sbxd, which is most of what an exec costs besides the process itself
    /// (docs/BENCHMARKS.md). OOM kills are read from the sandbox's memory cgroup around the call.
    /// </summary>
    public async Task<ExecResponse> ExecAsync(string name, ExecRequest request, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var cgroup = "/hive/" + name;
        var oomBefore = CgroupCounters.OomKills(cgroup);
        var response = await AgentChannel(name).UnaryAsync<ExecRequest, ExecResponse>(AgentService + "Exec", request, new CallOptions(timeout, cancellationToken));
        response.OomKilled = CgroupCounters.OomKills(cgroup) > oomBefore;
        return response;
    }

    /// <summary>Streamed exec, straight to the agent like <see cref="ExecAsync"/>: started, output chunks, exit.</summary>
    public IAsyncEnumerable<ExecStreamEvent> ExecStreamAsync(string name, ExecRequest request, CancellationToken cancellationToken) =>
        AgentChannel(name).ServerStreamingAsync<ExecRequest, ExecStreamEvent>(AgentService + "ExecStream", request, new CallOptions(null, cancellationToken));

    public Task<ExecInputResponse> ExecInputAsync(string name, ExecInputRequest request, CancellationToken cancellationToken) =>
        AgentChannel(name).UnaryAsync<ExecInputRequest, ExecInputResponse>(AgentService + "ExecInput", request, new CallOptions(TimeSpan.FromMinutes(5), cancellationToken));

    public IAsyncEnumerable<FileChunk> ReadFileAsync(string name, string path, CancellationToken cancellationToken) =>
        Channel(name).ServerStreamingAsync<ReadFileRequest, FileChunk>(Service + "ReadFile", new ReadFileRequest { Path = path }, new CallOptions(null, cancellationToken));

    public Task<WriteFileResponse> WriteFileAsync(string name, IAsyncEnumerable<WriteFileRequest> requests, CancellationToken cancellationToken) =>
        Channel(name).ClientStreamingAsync<WriteFileRequest, WriteFileResponse>(Service + "WriteFile", requests, new CallOptions(null, cancellationToken));

    public Task<ListFilesResponse> ListFilesAsync(string name, string path, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<ListFilesRequest, ListFilesResponse>(Service + "ListFiles", new ListFilesRequest { Path = path }, new CallOptions(TimeSpan.FromMinutes(5), cancellationToken));

    public Task<UpdateAclsResponse> UpdateAclsAsync(string name, UpdateAclsRequest request, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<UpdateAclsRequest, UpdateAclsResponse>(Service + "UpdateAcls", request, new CallOptions(TimeSpan.FromSeconds(30), cancellationToken));

    public Task<UpdateEgressResponse> UpdateEgressAsync(string name, UpdateEgressRequest request, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<UpdateEgressRequest, UpdateEgressResponse>(Service + "UpdateEgress", request, new CallOptions(TimeSpan.FromSeconds(30), cancellationToken));

    public Task<EventBudgetStatus> EventBudgetAsync(string name, EventBudgetRequest request, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<EventBudgetRequest, EventBudgetStatus>(Service + "EventBudget", request, new CallOptions(TimeSpan.FromSeconds(30), cancellationToken));

    public Task<DestroyResponse> DestroyAsync(string name, TimeSpan timeout, CancellationToken cancellationToken) =>
        Channel(name).UnaryAsync<DestroyRequest, DestroyResponse>(Service + "Destroy", new DestroyRequest(), new CallOptions(timeout, cancellationToken));

    public void Forget(string name)
    {
        if (_channels.TryRemove(name, out var channel))
        {
            channel.Dispose();
        }

        if (_agentChannels.TryRemove(name, out var agent))
        {
            agent.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var channel in _channels.Values.Concat(_agentChannels.Values))
        {
            channel.Dispose();
        }

        _channels.Clear();
        _agentChannels.Clear();
    }

    private GrpcChannel AgentChannel(string name) =>
        _agentChannels.GetOrAdd(name, static (n, l) => GrpcChannel.ForUnixSocket(Path.Combine(l.StateDir(n), "agent.sock")), launcher);

    private GrpcChannel Channel(string name) =>
        _channels.GetOrAdd(name, static (n, l) => GrpcChannel.ForUnixSocket(l.SocketPath(n)), launcher);
}
