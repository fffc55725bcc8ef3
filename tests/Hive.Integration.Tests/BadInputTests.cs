using System.Net;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>Untrusted input gets a JSON 4xx with a message — never a 5xx, a crash or the host's data.</summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class BadInputTests : SharedControllerFixture
{
    private string _name = null!;

    [OneTimeSetUp]
    public async Task CreateSandboxAsync()
    {
        _name = Names.Unique("bad");
        await Controller.CreateAsync(new { name = _name });
    }

    private static IEnumerable<TestCaseData> CreateBodies()
    {
        yield return new TestCaseData("{not json", 400).SetName("invalid JSON");
        yield return new TestCaseData("[1,2]", 400).SetName("array body");
        yield return new TestCaseData("""{"name": 5}""", 400).SetName("name of the wrong type");
        yield return new TestCaseData("""{"cpus": "lots"}""", 400).SetName("cpus of the wrong type");
        yield return new TestCaseData("""{"bogus": true}""", 400).SetName("unknown field");
        yield return new TestCaseData("""{"name": "a/b"}""", 400).SetName("name with slash");
        yield return new TestCaseData("""{"name": ".."}""", 400).SetName("name dot-dot");
        yield return new TestCaseData("""{"name": "a..b"}""", 400).SetName("name containing dot-dot");
        yield return new TestCaseData("""{"name": "a b"}""", 400).SetName("name with space");
        yield return new TestCaseData("""{"name": "UPPER"}""", 400).SetName("name with capitals");
        yield return new TestCaseData(JsonSerializer.Serialize(new { name = new string('a', 200) }), 400).SetName("name of 200 characters");
        yield return new TestCaseData("""{"memory": "-5m"}""", 400).SetName("negative memory");
        yield return new TestCaseData("""{"memory": "1000000t"}""", 400).SetName("huge memory");
        yield return new TestCaseData("""{"memory": "1m"}""", 400).SetName("tiny memory");
        yield return new TestCaseData("""{"cpus": -1}""", 400).SetName("negative cpus");
        yield return new TestCaseData("""{"cpus": 100000}""", 400).SetName("huge cpus");
        yield return new TestCaseData("""{"pids": -3}""", 400).SetName("negative pids");
        yield return new TestCaseData("""{"pids": 99999999999}""", 400).SetName("huge pids");
        yield return new TestCaseData("""{"timeout": 86401}""", 400).SetName("timeout over 86400");
        yield return new TestCaseData("""{"timeout": 0}""", 400).SetName("timeout zero");
        yield return new TestCaseData("""{"network": "everything"}""", 400).SetName("unknown network mode");
        yield return new TestCaseData("""{"image": "../../etc"}""", 400).SetName("image path escape");
        yield return new TestCaseData("""{"image": "nope"}""", 400).SetName("unknown image");
        yield return new TestCaseData("""{"env": {"A=B": "c"}}""", 400).SetName("env name with =");
    }

    [TestCaseSource(nameof(CreateBodies))]
    public async Task Create_rejects(string body, int expected)
    {
        var (status, json) = await Controller.SendAsync(HttpMethod.Post, "/api/v1/hiveboxes", body);
        Assert.That(status, Is.EqualTo(expected), json.ToString());
        Assert.That(json.GetProperty("error").GetString(), Is.Not.Empty);
        var (_, list) = await Controller.SendAsync(HttpMethod.Get, "/api/v1/hiveboxes");
        Assert.That(list.GetProperty("total").GetInt32(), Is.EqualTo(1), "a rejected create must not leave a sandbox");
    }

    private static IEnumerable<TestCaseData> Requests()
    {
        yield return new TestCaseData("POST", "exec", "{}", 400).SetName("exec without command");
        yield return new TestCaseData("POST", "exec", """{"command": "true", "timeout": 86401}""", 400).SetName("exec timeout over 86400");
        yield return new TestCaseData("POST", "exec", """{"command": "true", "timeout": -1}""", 400).SetName("exec negative timeout");
        yield return new TestCaseData("POST", "exec", """{"command": 5}""", 400).SetName("exec command of the wrong type");
        yield return new TestCaseData("POST", "exec", """{"command": "true", "cwd": "relative"}""", 400).SetName("exec relative cwd");
        yield return new TestCaseData("POST", "exec", """{"command": "true", "cwd": "/does/not/exist"}""", 400).SetName("exec missing cwd");
        yield return new TestCaseData("POST", "exec", "{oops", 400).SetName("exec invalid JSON");
        yield return new TestCaseData("GET", "files", null, 400).SetName("download without path");
        yield return new TestCaseData("PUT", "files", null, 400).SetName("upload without path");
        yield return new TestCaseData("GET", "files?path=relative/file", null, 400).SetName("download relative path");
        yield return new TestCaseData("GET", "files?path=/no/such/file", null, 404).SetName("download missing file");
        yield return new TestCaseData("GET", "files?path=/etc", null, 400).SetName("download a directory");
        yield return new TestCaseData("GET", "files?path=/etc/../../../../no-such", null, 404).SetName("download escaping to a missing file");
        yield return new TestCaseData("GET", "files/list?path=/no/such/dir", null, 404).SetName("list missing dir");
        yield return new TestCaseData("GET", "files/list?path=relative", null, 400).SetName("list relative path");
    }

    [TestCaseSource(nameof(Requests))]
    public async Task Sandbox_requests_reject(string method, string suffix, string? body, int expected)
    {
        var (status, json) = await Controller.SendAsync(new HttpMethod(method), $"/api/v1/hiveboxes/{_name}/{suffix}", body);
        Assert.That(status, Is.EqualTo(expected), json.ToString());
        Assert.That(json.GetProperty("error").GetString(), Is.Not.Empty);
    }

    [TestCase("GET", "/api/v1/hiveboxes/no-such-box")]
    [TestCase("DELETE", "/api/v1/hiveboxes/no-such-box")]
    [TestCase("POST", "/api/v1/hiveboxes/no-such-box/exec")]
    [TestCase("GET", "/api/v1/hiveboxes/no-such-box/files/list")]
    public async Task Unknown_sandbox_is_404(string method, string path)
    {
        var (status, json) = await Controller.SendAsync(new HttpMethod(method), path, method == "POST" ? """{"command": "true"}""" : null);
        Assert.That(status, Is.EqualTo(404), json.ToString());
    }

    [TestCase("/api/v1/hiveboxes/a%2Fb")]
    [TestCase("/api/v1/hiveboxes/a%20b")]
    [TestCase("/api/v1/hiveboxes/..%2F..%2Fetc")]
    public async Task Hostile_names_in_the_path_are_400(string path)
    {
        var (status, json) = await Controller.SendAsync(HttpMethod.Get, path);
        Assert.That(status, Is.EqualTo(400), json.ToString());
    }

    [Test]
    public async Task Path_escapes_read_the_containers_file_never_the_hosts()
    {
        using var response = await Controller.Http.GetAsync($"/api/v1/hiveboxes/{_name}/files?path=/../../etc/shadow");
        var hostShadow = await File.ReadAllBytesAsync("/etc/shadow");
        if (response.StatusCode == HttpStatusCode.OK)
        {
            var body = await response.Content.ReadAsByteArrayAsync();
            var containerShadow = await Controller.ExecAsync(_name, "cat /etc/shadow");
            Assert.That(body, Is.EqualTo(System.Text.Encoding.UTF8.GetBytes(containerShadow.GetProperty("stdout").GetString()!)));
            Assert.That(body, Is.Not.EqualTo(hostShadow));
        }
        else
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
        }

        // A symlink the agent plants pointing at "/" resolves inside the container too.
        await Controller.ExecAsync(_name, "mkdir -p /tmp/esc && ln -sf /../../../../etc/hostname /tmp/esc/link");
        var viaLink = await Controller.Http.GetStringAsync($"/api/v1/hiveboxes/{_name}/files?path=/tmp/esc/link");
        Assert.That(viaLink.Trim(), Is.EqualTo(_name));
    }

    [Test]
    public async Task Api_key_is_required_when_configured()
    {
        await using var secured = await ControllerProcess.StartAsync(apiKey: "test-key-0123456789");
        using var anonymous = new HttpClient { BaseAddress = secured.BaseAddress };
        using (var health = await anonymous.GetAsync("/healthz"))
        {
            Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await health.Content.ReadAsStringAsync(), Is.EqualTo("ok"));
        }

        using (var none = await anonymous.GetAsync("/api/v1/hiveboxes"))
        {
            Assert.That(none.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That(await none.Content.ReadAsStringAsync(), Does.Contain("\"error\""));
        }

        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", "test-key-0123456788");
        using (var wrong = await anonymous.GetAsync("/api/v1/hiveboxes"))
        {
            Assert.That(wrong.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
        }

        var (ok, _) = await secured.SendAsync(HttpMethod.Get, "/api/v1/hiveboxes");
        Assert.That(ok, Is.EqualTo(200));
    }

    [Test]
    public async Task One_gib_upload_streams_without_blowing_up_memory()
    {
        const long size = 1L << 30;
        using (var content = new StreamContent(new PatternStream(size), 64 * 1024))
        {
            content.Headers.ContentLength = size;
            using var put = await Controller.Http.PutAsync($"/api/v1/hiveboxes/{_name}/files?path=/tmp/big.bin", content);
            Assert.That(put.StatusCode, Is.EqualTo(HttpStatusCode.OK), await put.Content.ReadAsStringAsync());
        }

        var hwmKb = Host.ReadStatusKb(Controller.Pid, "VmHWM");
        Assert.That(hwmKb, Is.LessThan(400 * 1024), "the Controller must stream uploads, not buffer them");
        var check = await Controller.ExecAsync(_name, "stat -c %s /tmp/big.bin && head -c 16 /tmp/big.bin | od -An -tu1 | tr -s ' '", timeout: 60);
        Assert.That(check.GetProperty("stdout").GetString(), Does.StartWith($"{size}\n"));
        Assert.That(check.GetProperty("stdout").GetString(), Does.Contain(" 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15"));

        long downloaded = 0;
        await using (var stream = await Controller.Http.GetStreamAsync($"/api/v1/hiveboxes/{_name}/files?path=/tmp/big.bin"))
        {
            var buffer = new byte[1 << 20];
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                downloaded += n;
            }
        }

        Assert.That(downloaded, Is.EqualTo(size));
        Assert.That(Host.ReadStatusKb(Controller.Pid, "VmHWM"), Is.LessThan(400 * 1024));
        await Controller.ExecAsync(_name, "rm /tmp/big.bin");
    }

    /// <summary>A generated, non-seekable stream of bytes 0,1,…,255,0,1,… so 1 GiB never exists in memory.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => length;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            for (var i = 0; i < n; i++)
            {
                buffer[offset + i] = (byte)((_position + i) & 0xff);
            }

            _position += n;
            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
