using Hive.Policy.Net;
using Hive.Protos.V1;
using Hive.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Hive.SbxProxy.Control;

/// <summary>The NetControl gRPC service on the proxy's own Unix socket (only Sbxd connects): policy hot reload and counters.</summary>
internal sealed class ControlServer(ProxyState state) : IAsyncDisposable
{
    private WebApplication? _app;

    public async Task StartAsync(string socketPath)
    {
        var app = GrpcServer.Create(GrpcListen.UnixSocket(socketPath), b => b.Logging.SetMinimumLevel(LogLevel.Warning));
        app.MapUnary<SetPolicyRequest, SetPolicyResponse>("/hive.v1.NetControl/SetPolicy", SetPolicyAsync);
        app.MapUnary<GetNetStatsRequest, NetStats>("/hive.v1.NetControl/GetStats", (_, _) => Task.FromResult(Stats()));
        await app.StartAsync();
        _app = app;
    }

    private Task<SetPolicyResponse> SetPolicyAsync(SetPolicyRequest request, CallContext context)
    {
        EgressPolicy policy;
        try
        {
            policy = ProxyState.ParsePolicy(request.EgressJson);
        }
        catch (EgressPolicyException ex)
        {
            throw new RpcException(StatusCode.InvalidArgument, ex.Message);
        }

        state.Policy = policy;
        var rules = policy.Allow.Count + policy.Deny.Count;
        Console.Error.WriteLine($"hive-sbxproxy: egress policy replaced ({(policy.AllowAll ? "every host" : rules + " rules")})");
        return Task.FromResult(new SetPolicyResponse { Rules = (uint)rules });
    }

    private NetStats Stats()
    {
        var c = state.Counters;
        return new NetStats
        {
            Connections = (ulong)Interlocked.Read(ref c.Connections),
            Requests = (ulong)Interlocked.Read(ref c.Requests),
            Denied = (ulong)Interlocked.Read(ref c.Denied),
            DnsQueries = (ulong)Interlocked.Read(ref c.DnsQueries),
            UpstreamErrors = (ulong)Interlocked.Read(ref c.UpstreamErrors),
            BytesOut = (ulong)Interlocked.Read(ref c.BytesOut),
            BytesIn = (ulong)Interlocked.Read(ref c.BytesIn),
            Certificates = (uint)state.Ca.Minted,
            StartedAtUnixMs = state.StartedAtUnixMs,
        };
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
