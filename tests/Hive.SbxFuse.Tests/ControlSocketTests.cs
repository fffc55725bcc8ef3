using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.SbxFuse.Tests;

/// <summary>The FsControl gRPC service on the mount's own Unix socket.</summary>
[CancelAfter(60_000)]
public sealed class ControlSocketTests
{
    [Test]
    public async Task Set_acls_stats_health_and_drain()
    {
        await using var fs = await SbxFuseProcess.StartAsync();
        using var control = GrpcChannel.ForUnixSocket(fs.ControlSocket);
        var health = await control.UnaryAsync<FsHealthRequest, FsHealthResponse>("/hive.v1.FsControl/Health", new FsHealthRequest());
        Assert.That(health.Serving, Is.True);
        Assert.That(health.Mount, Is.EqualTo("/workspace"));

        await File.WriteAllTextAsync(fs.M("a.txt"), "12345");
        var set = new SetAclsRequest();
        set.Rules.Add(new FsAclRule { Path = "/workspace/**", Access = "ro" });
        Assert.That((await control.UnaryAsync<SetAclsRequest, SetAclsResponse>("/hive.v1.FsControl/SetAcls", set)).Rules, Is.EqualTo(1));
        Assert.Catch(() => File.WriteAllText(fs.M("b.txt"), "x"), "read-only right after the call returns");
        Assert.That(await File.ReadAllTextAsync(fs.M("a.txt")), Is.EqualTo("12345"));

        var bad = new SetAclsRequest();
        bad.Rules.Add(new FsAclRule { Path = "/etc/**", Access = "rw" });
        var rejected = Assert.ThrowsAsync<RpcException>(() => control.UnaryAsync<SetAclsRequest, SetAclsResponse>("/hive.v1.FsControl/SetAcls", bad));
        Assert.That(rejected!.StatusCode, Is.EqualTo(StatusCode.InvalidArgument));
        Assert.Catch(() => File.WriteAllText(fs.M("b.txt"), "x"), "a rejected update keeps the previous rules");

        var stats = await control.UnaryAsync<GetFsStatsRequest, FsStats>("/hive.v1.FsControl/GetStats", new GetFsStatsRequest());
        Assert.That(stats.Operations, Is.GreaterThan(3));
        Assert.That(stats.BytesWritten, Is.EqualTo(5));
        Assert.That(stats.BytesRead, Is.EqualTo(5));
        Assert.That(stats.Denied, Is.GreaterThanOrEqualTo(1));
        Assert.That(stats.AclRules, Is.EqualTo(1));

        // Drain: an open file is made durable, then the mount goes away and the process exits.
        await using (var open = new FileStream(fs.M("a.txt"), FileMode.Open, FileAccess.Read))
        {
            var drained = await control.UnaryAsync<DrainRequest, DrainResponse>("/hive.v1.FsControl/Drain", new DrainRequest());
            Assert.That(drained.Flushed, Is.EqualTo(1));
        }

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!fs.HasExited)
        {
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "hive-sbxfuse exits after a drain");
            await Task.Delay(50);
        }

        Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain(fs.Target));
    }
}
