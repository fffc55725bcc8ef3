using Hive.Interop;
using Hive.Policy.Fs;
using Hive.Protos.V1;
using Hive.SbxFuse.Fs;
using Hive.Wire;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace Hive.SbxFuse.Control;

/// <summary>
/// The FsControl gRPC service on the mount's own Unix socket (only Sbxd connects): ACL hot reload,
/// counters, health, and a graceful drain that makes every open file durable before unmounting.
/// </summary>
internal sealed class ControlServer(GovernedFileSystem fs, string mount, Action stop) : IAsyncDisposable
{
    private readonly long _startedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    private WebApplication? _app;

    public async Task StartAsync(string socketPath)
    {
        var app = GrpcServer.Create(GrpcListen.UnixSocket(socketPath), b => b.Logging.SetMinimumLevel(LogLevel.Warning));
        app.MapUnary<SetAclsRequest, SetAclsResponse>("/hive.v1.FsControl/SetAcls", SetAclsAsync);
        app.MapUnary<GetFsStatsRequest, FsStats>("/hive.v1.FsControl/GetStats", (_, _) => Task.FromResult(Stats()));
        app.MapUnary<FsHealthRequest, FsHealthResponse>("/hive.v1.FsControl/Health", (_, _) => Task.FromResult(new FsHealthResponse { Serving = true, Mount = mount }));
        app.MapUnary<DrainRequest, DrainResponse>("/hive.v1.FsControl/Drain", DrainAsync);
        await app.StartAsync();
        _app = app;
    }

    private Task<SetAclsResponse> SetAclsAsync(SetAclsRequest request, CallContext context)
    {
        var rules = new List<AclRule>();
        for (var i = 0; i < request.Rules.Count; i++)
        {
            if (!AccessNames.TryParse(request.Rules[i].Access, out var access))
            {
                throw new RpcException(StatusCode.InvalidArgument, $"rules[{i}]: access must be rw, ro or deny");
            }

            rules.Add(new AclRule(request.Rules[i].Path, access));
        }

        AclPolicy policy;
        try
        {
            policy = rules.Count == 0 ? AclPolicy.Default(mount) : AclPolicy.Parse(mount, rules);
        }
        catch (AclException ex)
        {
            throw new RpcException(StatusCode.InvalidArgument, ex.Message);
        }

        // Answered once the kernel's caches were told: every operation after the reply is decided by the new rules.
        var (epoch, inodes) = fs.ReplacePolicy(policy);
        Console.Error.WriteLine($"hive-sbxfuse: ACLs replaced over the control socket ({rules.Count} rules; {CacheLog.Describe(epoch, inodes)})");
        return Task.FromResult(new SetAclsResponse { Rules = (uint)rules.Count });
    }

    private FsStats Stats() => new()
    {
        Mount = mount,
        Operations = (ulong)fs.Counters.Operations,
        Denied = (ulong)fs.Counters.Denied,
        Errors = (ulong)fs.Counters.Errors,
        BytesRead = (ulong)fs.Counters.BytesRead,
        BytesWritten = (ulong)fs.Counters.BytesWritten,
        OpenHandles = (uint)fs.OpenHandles,
        StartedAtUnixMs = _startedAt,
        AclRules = (uint)fs.Policy.Rules.Count,
    };

    private Task<DrainResponse> DrainAsync(DrainRequest request, CallContext context)
    {
        var flushed = fs.FlushAll();
        stop();
        return Task.FromResult(new DrainResponse { Flushed = (uint)flushed });
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _app.StopAsync(timeout.Token);
            await _app.DisposeAsync();
        }
    }
}
