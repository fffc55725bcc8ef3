using Hive.Controller.Api;
using Hive.Controller.Sandboxes.Config;
using Hive.Controller.Sandboxes.Store;

namespace Hive.Controller.Tests;

public sealed class StoreTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("hive-store-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static SandboxRecord Record(string name, DateTimeOffset now, int ttl = 3600) => new()
    {
        Config = new SandboxConfig { Name = name, MemoryBytes = 256L << 20, Env = new Dictionary<string, string> { ["A"] = "b" } },
        Status = LifecycleStatus.Running,
        CreatedAt = now,
        ExpiresAt = now.AddSeconds(ttl),
    };

    [Test]
    public void Round_trip_survives_reopening()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var path = Path.Combine(_dir, "hive.db");
        var store = new SandboxStore(path, TimeProvider.System);
        Assert.That(store.TryInsert(Record("a", now)), Is.True);
        Assert.That(store.TryInsert(Record("a", now)), Is.False, "names are unique");
        store.IncrementCommands("a");
        store.IncrementCommands("a");
        Assert.That(store.Get("a").CommandsExecuted, Is.EqualTo(2), "pending counts are visible before they are written");
        store.FlushCommands();

        var reopened = new SandboxStore(path, TimeProvider.System);
        var a = reopened.Get("a");
        Assert.That(a.Config.Memory, Is.EqualTo("256m"));
        Assert.That(a.Config.Env["A"], Is.EqualTo("b"));
        Assert.That(a.CommandsExecuted, Is.EqualTo(2));
        Assert.That(a.CreatedAt, Is.EqualTo(now));
        Assert.That(reopened.List(), Has.Count.EqualTo(1));
        Assert.That(reopened.Delete("a"), Is.True);
        Assert.Throws<ApiException>(() => reopened.Get("a"));
    }

    [Test]
    public void Expired_sandboxes_are_listed()
    {
        var now = DateTimeOffset.UtcNow;
        var store = new SandboxStore(Path.Combine(_dir, "hive.db"), TimeProvider.System);
        store.TryInsert(Record("old", now.AddHours(-2), ttl: 60));
        store.TryInsert(Record("new", now));
        Assert.That(store.ListExpired(), Is.EqualTo(new[] { "old" }));
    }

    [Test]
    public void Cached_rows_follow_every_write()
    {
        var now = DateTimeOffset.UtcNow;
        var store = new SandboxStore(Path.Combine(_dir, "hive.db"), TimeProvider.System);
        store.TryInsert(Record("c", now));
        Assert.That(store.Get("c").Status, Is.EqualTo(LifecycleStatus.Running));
        store.SetStatus("c", LifecycleStatus.Failed, "boom");
        Assert.That(store.Get("c").Error, Is.EqualTo("boom"));
        store.IncrementCommands("c");
        Assert.That(store.Get("c").CommandsExecuted, Is.EqualTo(1));
        store.FlushCommands();
        Assert.That(store.Get("c").CommandsExecuted, Is.EqualTo(1), "flushing neither loses nor doubles counts");
        store.IncrementCommands("c");
        Assert.That(store.Get("c").CommandsExecuted, Is.EqualTo(2));
        store.Delete("c");
        Assert.That(store.Find("c"), Is.Null);
    }
}
