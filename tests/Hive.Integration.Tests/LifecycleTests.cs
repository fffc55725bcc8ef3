using System.Net;
using System.Security.Cryptography;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>The end-to-end walk: create, exec, timeout, files, list, delete — and nothing left behind.</summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class LifecycleTests : SharedControllerFixture
{
    [Test]
    public async Task Create_exec_files_delete_leaves_nothing_behind()
    {
        var name = Names.Unique("life");
        var created = await Controller.CreateAsync(new { name });
        Assert.Multiple(() =>
        {
            Assert.That(created.GetProperty("id").GetString(), Is.EqualTo(name));
            Assert.That(created.GetProperty("status").GetString(), Is.EqualTo("running"));
            Assert.That(created.GetProperty("image").GetString(), Is.EqualTo("base"));
            Assert.That(created.GetProperty("limits").GetProperty("memory").GetString(), Is.EqualTo("512m"));
            Assert.That(created.GetProperty("limits").GetProperty("cpus").GetDouble(), Is.EqualTo(1.0));
            Assert.That(created.GetProperty("limits").GetProperty("pids").GetInt32(), Is.EqualTo(128));
            Assert.That(created.GetProperty("network").GetProperty("mode").GetString(), Is.EqualTo("none"));
            var createdAt = DateTimeOffset.Parse(created.GetProperty("created_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            var expiresAt = DateTimeOffset.Parse(created.GetProperty("expires_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
            Assert.That((expiresAt - createdAt).TotalSeconds, Is.EqualTo(3600).Within(1));
        });

        var python = await Controller.ExecAsync(name, "python3 -c 'print(1+1)'");
        Assert.That(python.GetProperty("stdout").GetString(), Is.EqualTo("2\n"));
        Assert.That(python.GetProperty("exit_code").GetInt32(), Is.Zero);
        Assert.That(python.GetProperty("stderr").GetString(), Is.Empty);
        Assert.That(python.GetProperty("duration_ms").GetInt64(), Is.GreaterThanOrEqualTo(0));

        var exit3 = await Controller.ExecAsync(name, "echo out; echo err >&2; exit 3");
        Assert.That(exit3.GetProperty("exit_code").GetInt32(), Is.EqualTo(3));
        Assert.That(exit3.GetProperty("stdout").GetString(), Is.EqualTo("out\n"));
        Assert.That(exit3.GetProperty("stderr").GetString(), Is.EqualTo("err\n"));

        var slept = await Controller.ExecAsync(name, "sleep 100", timeout: 1);
        Assert.That(slept.GetProperty("timed_out").GetBoolean(), Is.True);
        Assert.That(slept.GetProperty("exit_code").GetInt32(), Is.Not.Zero);
        Assert.That(slept.GetProperty("duration_ms").GetInt64(), Is.InRange(900, 30_000));
        var sleeping = await Controller.ExecAsync(name, "ps -eo comm | grep -c '^sleep$' || true");
        Assert.That(sleeping.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo("0"), "the timed-out command's process group must be gone");

        var payload = RandomNumberGenerator.GetBytes((3 << 20) + 17);
        using (var put = await Controller.Http.PutAsync($"/api/v1/hiveboxes/{name}/files?path=/work/data/blob.bin", new ByteArrayContent(payload)))
        {
            Assert.That(put.StatusCode, Is.EqualTo(HttpStatusCode.OK), await put.Content.ReadAsStringAsync());
        }

        await Controller.Http.PutAsync($"/api/v1/hiveboxes/{name}/files?path=/work/readme.txt", new StringContent("hello\n"));
        var downloaded = await Controller.Http.GetByteArrayAsync($"/api/v1/hiveboxes/{name}/files?path=/work/data/blob.bin");
        Assert.That(downloaded, Is.EqualTo(payload), "download must be byte-identical to the upload");
        var sum = await Controller.ExecAsync(name, "sha256sum /work/data/blob.bin | cut -d' ' -f1");
        Assert.That(sum.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(payload))));

        var (status, list) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}/files/list?path=/work");
        Assert.That(status, Is.EqualTo(200), list.ToString());
        var entries = list.GetProperty("entries").EnumerateArray().ToDictionary(e => e.GetProperty("path").GetString()!);
        Assert.That(entries.Keys, Is.EquivalentTo(new[] { "/work/data", "/work/data/blob.bin", "/work/readme.txt" }));
        Assert.That(entries["/work/data"].GetProperty("entry_type").GetString(), Is.EqualTo("directory"));
        Assert.That(entries["/work/data"].TryGetProperty("size", out _), Is.False, "directories carry no size");
        Assert.That(entries["/work/data/blob.bin"].GetProperty("entry_type").GetString(), Is.EqualTo("file"));
        Assert.That(entries["/work/data/blob.bin"].GetProperty("size").GetInt64(), Is.EqualTo(payload.Length));
        Assert.That(entries["/work/readme.txt"].GetProperty("name").GetString(), Is.EqualTo("readme.txt"));
        Assert.That(list.GetProperty("total").GetInt32(), Is.EqualTo(3));

        var (listed, all) = await Controller.SendAsync(HttpMethod.Get, "/api/v1/hiveboxes");
        Assert.That(listed, Is.EqualTo(200));
        var mine = all.GetProperty("sandboxes").EnumerateArray().Single(s => s.GetProperty("id").GetString() == name);
        Assert.That(mine.GetProperty("commands_executed").GetInt64(), Is.GreaterThanOrEqualTo(5));
        Assert.That(mine.GetProperty("ttl_seconds").GetInt64(), Is.InRange(3000, 3600));
        Assert.That(mine.GetProperty("memory").GetString(), Is.EqualTo("512m"));

        var (deleted, body) = await Controller.SendAsync(HttpMethod.Delete, $"/api/v1/hiveboxes/{name}");
        Assert.That(deleted, Is.EqualTo(200), body.ToString());
        Assert.That(body.GetProperty("status").GetString(), Is.EqualTo("destroyed"));
        Assert.That(await Host.LeftoversAsync(name, Controller.StateDir(name)), Is.Empty);
        var (gone, _) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
        Assert.That(gone, Is.EqualTo(404));
    }

    [Test]
    public async Task Put_is_get_or_create_and_post_rejects_duplicates()
    {
        var name = Names.Unique("goc");
        var (first, a) = await Controller.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{name}", """{"memory": "256m"}""");
        Assert.That(first, Is.EqualTo(201), a.ToString());
        var (second, b) = await Controller.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{name}", """{"memory": "256m"}""");
        Assert.That(second, Is.EqualTo(200), b.ToString());
        Assert.That(b.GetProperty("created_at").GetString(), Is.EqualTo(a.GetProperty("created_at").GetString()));
        var (conflict, c) = await Controller.SendAsync(HttpMethod.Put, $"/api/v1/hiveboxes/{name}", """{"memory": "1g"}""");
        Assert.That(conflict, Is.EqualTo(409), c.ToString());
        Assert.That(c.GetProperty("error").GetString(), Does.Contain("memory"));
        var (dup, d) = await Controller.SendAsync(HttpMethod.Post, "/api/v1/hiveboxes", JsonSerializer.Serialize(new { name }));
        Assert.That(dup, Is.EqualTo(409), d.ToString());
        var (detail, e) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{name}");
        Assert.That(detail, Is.EqualTo(200));
        Assert.That(e.GetProperty("limits").GetProperty("memory").GetString(), Is.EqualTo("256m"));
        Assert.That(e.GetProperty("uptime_seconds").GetInt64(), Is.GreaterThanOrEqualTo(0));
        await Controller.DestroyAsync(name);
    }

    [Test]
    public async Task Random_name_when_none_is_given()
    {
        var created = await Controller.CreateAsync(new { memory = "128m" });
        var id = created.GetProperty("id").GetString()!;
        Assert.That(id, Does.Match("^hb-[a-z0-9]+$"));
        await Controller.DestroyAsync(id);
        Assert.That(await Host.LeftoversAsync(id, Controller.StateDir(id)), Is.Empty);
    }

    [Test]
    public async Task Sandboxes_cannot_see_each_others_processes_or_files()
    {
        var a = Names.Unique("iso-a");
        var b = Names.Unique("iso-b");
        await Controller.CreateAsync(new { name = a });
        await Controller.CreateAsync(new { name = b });
        try
        {
            await Controller.ExecAsync(a, "echo secret-a > /root/secret.txt; (setsid sleep 300 >/dev/null 2>&1 &); echo started");
            var bFiles = await Controller.ExecAsync(b, "cat /root/secret.txt");
            Assert.That(bFiles.GetProperty("exit_code").GetInt32(), Is.Not.Zero);
            Assert.That(bFiles.GetProperty("stdout").GetString(), Does.Not.Contain("secret"));
            var bProcs = await Controller.ExecAsync(b, "ps -eo pid,comm");
            Assert.That(bProcs.GetProperty("stdout").GetString(), Does.Not.Contain("sleep"));
            var aProcs = await Controller.ExecAsync(a, "ps -eo pid,comm");
            Assert.That(aProcs.GetProperty("stdout").GetString(), Does.Contain("sleep"));
            var (status, _) = await Controller.SendAsync(HttpMethod.Get, $"/api/v1/hiveboxes/{b}/files?path=/root/secret.txt");
            Assert.That(status, Is.EqualTo(404));
            var hostname = await Controller.ExecAsync(b, "hostname");
            Assert.That(hostname.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo(b));
            var net = await Controller.ExecAsync(b, "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '");
            Assert.That(net.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo("lo"), "network mode none: loopback only");
        }
        finally
        {
            await Controller.DestroyAsync(a);
            await Controller.DestroyAsync(b);
        }

        Assert.That(await Host.LeftoversAsync(a, Controller.StateDir(a)), Is.Empty);
        Assert.That(await Host.LeftoversAsync(b, Controller.StateDir(b)), Is.Empty);
    }
}
