using System.Diagnostics;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>
/// Everyday work inside one sandbox under the seccomp allow-list and the minimal capability set:
/// git, sqlite in WAL mode, pip into a venv (from a package index this fixture serves on 127.0.0.1,
/// reached through SbxProxy with the sandbox's CA), npm, dpkg and apt with maintainer scripts, node,
/// curl, servers on low ports, other users, and the MCP tools. Every package is made by the test
/// (LocalPackages); nothing leaves the host.
/// </summary>
[TestFixture]
[CancelAfter(900_000)]
public sealed class ToolchainTests
{
    private const string IndexHost = "pypi.toolchain.test";
    private string _dir = null!;
    private Process _index = null!;
    private int _indexPort;
    private ControllerProcess _controller = null!;
    private string _name = null!;

    [OneTimeSetUp]
    public async Task StartAsync()
    {
        _dir = Directory.CreateTempSubdirectory("hive-toolchain-").FullName;
        var ca = WriteCertificates(_dir);
        var project = Path.Combine(_dir, "www", "simple", "hive-demo-wheel");
        Directory.CreateDirectory(project);
        await File.WriteAllBytesAsync(Path.Combine(project, "hive_demo_wheel-1.0-py3-none-any.whl"), LocalPackages.Wheel("hive-demo-wheel", "1.0", "'from the index'"));
        _index = StartIndex(Path.Combine(_dir, "www"));
        _indexPort = int.Parse((await _index.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)))!, System.Globalization.CultureInfo.InvariantCulture);

        _controller = await ControllerProcess.StartAsync(null, null, "--egress-ca", ca, "--egress-resolve", IndexHost + "=127.0.0.1", "--egress-allow-cidr", "127.0.0.1/32");
        _name = Names.Unique("tools");
        await _controller.CreateAsync(new { name = _name, egress = new { allow = new object[] { new { host = IndexHost } } } });
    }

    [OneTimeTearDown]
    public async Task StopAsync()
    {
        if (_controller is not null)
        {
            await _controller.DisposeAsync();
        }

        if (_index is { HasExited: false })
        {
            _index.Kill();
            await _index.WaitForExitAsync();
        }

        _index?.Dispose();
        if (_dir is not null)
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Test]
    public async Task Git_commits_and_clones_a_local_repository()
    {
        var output = await ShAsync("""
            set -e
            git config --global user.email agent@example.invalid && git config --global user.name agent && git config --global init.defaultBranch main
            rm -rf /tmp/git && mkdir -p /tmp/git/origin && cd /tmp/git/origin && git init -q
            for i in $(seq 1 50); do echo "line $i" > "file$i.txt"; done
            git add . && git commit -qm first && echo more >> file1.txt && git commit -qam second
            cd /tmp/git && git clone -q origin plain && git clone -q --no-local file:///tmp/git/origin packed
            cd packed && git log --format=%s | tr '\n' ' ' && git fsck --no-progress && git gc -q && git status --short | wc -l
            """);
        Assert.That(output, Is.EqualTo("second first 0\n"));
    }

    [Test]
    public async Task Sqlite_runs_in_wal_mode_with_two_connections()
    {
        var output = await ShAsync("""
            rm -f /tmp/wal.db* && python3 - <<'EOF'
            import sqlite3
            a = sqlite3.connect('/tmp/wal.db', isolation_level=None)
            mode = a.execute('PRAGMA journal_mode=WAL').fetchone()[0]
            a.execute('CREATE TABLE t(x)')
            a.execute('INSERT INTO t VALUES (1)')
            b = sqlite3.connect('/tmp/wal.db', isolation_level=None)
            b.execute('BEGIN')
            before = b.execute('SELECT count(*) FROM t').fetchone()[0]
            a.execute('INSERT INTO t VALUES (2)')
            during = b.execute('SELECT count(*) FROM t').fetchone()[0]
            b.execute('COMMIT')
            after = b.execute('SELECT count(*) FROM t').fetchone()[0]
            a.execute('PRAGMA wal_checkpoint(TRUNCATE)')
            print(mode, before, during, after)
            EOF
            sqlite3 /tmp/wal.db 'PRAGMA journal_mode; INSERT INTO t VALUES (3); SELECT count(*) FROM t;'
            """);
        Assert.That(output, Is.EqualTo("wal 1 1 2\nwal\n3\n"), "a reader keeps its snapshot while another connection writes");
    }

    [Test]
    public async Task Pip_installs_into_a_venv_from_an_index_and_from_a_source_tree()
    {
        var output = await ShAsync($"""
            set -e
            rm -rf /tmp/venv /tmp/src && python3 -m venv /tmp/venv
            /tmp/venv/bin/pip install -q --disable-pip-version-check --index-url https://{IndexHost}:{_indexPort}/simple/ hive-demo-wheel
            mkdir -p /tmp/src/hive_demo_src && echo 'VALUE = "built here"' > /tmp/src/hive_demo_src/__init__.py
            printf 'from setuptools import setup\nsetup(name="hive-demo-src", version="1.0", packages=["hive_demo_src"])\n' > /tmp/src/setup.py
            /tmp/venv/bin/pip install -q --disable-pip-version-check --no-index --no-build-isolation /tmp/src
            /tmp/venv/bin/python -c 'import hive_demo_wheel, hive_demo_src; print(hive_demo_wheel.VALUE, "/", hive_demo_src.VALUE)'
            /tmp/venv/bin/pip list --format=freeze 2>/dev/null | grep -c hive-demo
            """);
        Assert.That(output, Is.EqualTo("from the index / built here\n2\n"));
        var connects = await _controller.EventsAsync(_name, kind: "net.connect", decision: "allow");
        Assert.That(connects.Any(e => e.GetProperty("host").GetString() == IndexHost), "pip reached the index through SbxProxy (on record)");
    }

    [Test]
    public async Task Npm_installs_a_local_tarball_and_runs_its_install_script()
    {
        // The base image has node but no npm: the host's npm (pure JavaScript) is copied in.
        var (code, root, error) = await Host.RunAsync("npm", "root", "-g");
        Assume.That(code, Is.Zero, "npm on the host: " + error);
        var archive = Path.Combine(_dir, "npm.tgz");
        var tar = await Host.RunAsync("tar", "-czf", archive, "-C", root.Trim(), "npm");
        Assert.That(tar.ExitCode, Is.Zero, tar.Stderr);
        await UploadAsync("/opt/npm.tgz", await File.ReadAllBytesAsync(archive));
        await UploadAsync("/tmp/hive-local-1.0.0.tgz", LocalPackages.NpmTarball("hive-local", "1.0.0", "/tmp/npm-postinstall"));
        var output = await ShAsync("""
            set -e
            rm -rf /opt/npm /tmp/app /tmp/npm-postinstall && tar -xzf /opt/npm.tgz -C /opt
            mkdir -p /tmp/app && cd /tmp/app && echo '{"name": "app", "version": "1.0.0", "private": true}' > package.json
            node /opt/npm/bin/npm-cli.js install --offline --no-audit --no-fund /tmp/hive-local-1.0.0.tgz >/tmp/npm.log 2>&1 || { cat /tmp/npm.log; exit 1; }
            node -e 'console.log(require("hive-local").answer)' && cat /tmp/npm-postinstall && echo && grep -c hive-local package.json
            """);
        Assert.That(output, Is.EqualTo("42\ninstalled\n1\n"));
    }

    [Test]
    public async Task Dpkg_and_apt_install_a_package_whose_scripts_add_a_user_and_chown()
    {
        await UploadAsync("/tmp/hive-demo_1.0_all.deb", await LocalPackages.DebAsync());
        var output = await ShAsync($$"""
            set -e
            export DEBIAN_FRONTEND=noninteractive
            dpkg -i /tmp/hive-demo_1.0_all.deb >/dev/null
            stat -c '%U:%G %a' /var/lib/{{LocalPackages.DebName}} && id -un {{LocalPackages.DebUser}}
            dpkg --purge {{LocalPackages.DebName}} >/dev/null && userdel {{LocalPackages.DebUser}}
            apt-get install -y -q /tmp/hive-demo_1.0_all.deb >/dev/null 2>&1
            dpkg-query -W -f '${Status}\n' {{LocalPackages.DebName}} && cat /usr/share/{{LocalPackages.DebName}}/README
            apt-get remove -y -q {{LocalPackages.DebName}} >/dev/null 2>&1
            test "$(dpkg-query -W -f '${Status}' {{LocalPackages.DebName}} 2>/dev/null)" != "install ok installed" && echo removed
            """);
        Assert.That(output, Is.EqualTo($"{LocalPackages.DebUser}:{LocalPackages.DebUser} 750\n{LocalPackages.DebUser}\ninstall ok installed\nhive demo package\nremoved\n"));
    }

    [Test]
    public async Task Node_runs_a_server_workers_and_child_processes()
    {
        var output = await ShAsync("""
            cat > /tmp/app.js <<'EOF'
            const http = require('http'), { execFileSync } = require('child_process'), { Worker } = require('worker_threads'), crypto = require('crypto'), fs = require('fs');
            const server = http.createServer((req, res) => res.end('pong ' + req.url));
            server.listen(0, '127.0.0.1', async () => {
              const body = await (await fetch(`http://127.0.0.1:${server.address().port}/x`)).text();
              const worker = await new Promise(resolve => new Worker('require("worker_threads").parentPort.postMessage(6 * 7)', { eval: true }).on('message', resolve));
              const child = execFileSync('sh', ['-c', 'echo child']).toString().trim();
              fs.writeFileSync('/tmp/node.txt', crypto.createHash('sha256').update('hive').digest('hex').slice(0, 8));
              console.log(body, worker, child, fs.readFileSync('/tmp/node.txt', 'utf8'));
              server.close();
            });
            EOF
            node /tmp/app.js
            """);
        Assert.That(output, Is.EqualTo("pong /x 42 child " + Convert.ToHexStringLower(SHA256.HashData("hive"u8))[..8] + "\n"));
    }

    [Test]
    public async Task Curl_and_python_reach_an_allowed_host_through_the_proxy_with_the_sandbox_CA()
    {
        var output = await ShAsync($$"""
            curl -sS -o /dev/null -w '%{http_code} %{ssl_verify_result}\n' https://{{IndexHost}}:{{_indexPort}}/simple/
            python3 -c 'import requests; print(requests.get("https://{{IndexHost}}:{{_indexPort}}/simple/hive-demo-wheel/").status_code)'
            """);
        Assert.That(output, Is.EqualTo("200 0\n200\n"));
    }

    [Test]
    public async Task Servers_bind_ports_below_1024_without_a_capability()
    {
        // CAP_NET_BIND_SERVICE is dropped; the sandbox's network namespace lets anyone bind low ports.
        var output = await ShAsync("""
            python3 -m http.server 80 --bind 127.0.0.1 --directory /etc >/dev/null 2>&1 &
            server=$!
            for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:80/ && break; sleep 0.1; done
            curl -s -o /dev/null -w '%{http_code}\n' http://127.0.0.1:80/hostname
            kill $server
            runuser -u nobody -- python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 443)); print("nobody bound", s.getsockname()[1])'
            """);
        Assert.That(output, Is.EqualTo("200\nnobody bound 443\n"));
    }

    [Test]
    public async Task Commands_run_as_other_users_and_the_timeout_stops_them()
    {
        var output = await ShAsync("runuser -u nobody -- id -un && su -s /bin/sh -c 'id -un' nobody && setpriv --reuid=nobody --regid=nogroup --clear-groups id -u");
        Assert.That(output, Is.EqualTo("nobody\nnobody\n65534\n"));

        // The agent stops a timed-out command's whole process group, also the part running as another user (CAP_KILL).
        var timedOut = await _controller.ExecAsync(_name, "setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 600", timeout: 2);
        Assert.That(timedOut.GetProperty("timed_out").GetBoolean(), Is.True, timedOut.ToString());
        Assert.That(await ShAsync("pgrep -u nobody -c sleep || true"), Is.EqualTo("0\n"), "nobody's sleep was stopped");
    }

    [Test]
    public async Task The_mcp_tools_work()
    {
        var mcp = new McpSession(_controller.Http, $"/api/v1/hiveboxes/{_name}/mcp");
        await mcp.InitializeAsync();
        var tools = (await mcp.CallAsync("tools/list", new { })).GetProperty("tools").EnumerateArray().Select(t => t.GetProperty("name").GetString()).ToList();
        Assert.That(tools, Is.SupersetOf(new[] { "exec", "write_file", "read_file", "edit_file", "search_files", "list_directory", "move_file", "get_file_info" }));

        await mcp.ToolAsync("create_directory", new { path = "/tmp/mcp" });
        await mcp.ToolAsync("write_file", new { path = "/tmp/mcp/a.txt", content = "alpha\nbeta\n" });
        await mcp.ToolAsync("edit_file", new { path = "/tmp/mcp/a.txt", old_text = "beta", new_text = "gamma" });
        await mcp.ToolAsync("move_file", new { source = "/tmp/mcp/a.txt", destination = "/tmp/mcp/b.txt" });
        var read = await mcp.ToolAsync("read_file", new { path = "/tmp/mcp/b.txt" });
        Assert.That(read.GetRawText(), Does.Contain("alpha\\ngamma"));
        var search = await mcp.ToolAsync("search_files", new { pattern = "gam+a", path = "/tmp/mcp" });
        Assert.That(search.GetRawText(), Does.Contain("/tmp/mcp/b.txt"));
        var exec = await mcp.ToolAsync("exec", new { command = "python3 -c 'print(6 * 7)'" });
        Assert.That(exec.GetRawText(), Does.Contain("42"));
    }

    private async Task<string> ShAsync(string script)
    {
        var result = await _controller.ExecAsync(_name, script, timeout: 600);
        var stdout = result.GetProperty("stdout").GetString()!;
        Assert.That(result.GetProperty("exit_code").GetInt32(), Is.Zero, stdout + "\n" + result.GetProperty("stderr").GetString());
        return stdout;
    }

    private async Task UploadAsync(string path, byte[] content)
    {
        using var body = new ByteArrayContent(content);
        using var put = await _controller.Http.PutAsync($"/api/v1/hiveboxes/{_name}/files?path={path}", body);
        Assert.That(put.IsSuccessStatusCode, await put.Content.ReadAsStringAsync());
    }

    /// <summary>A static HTTPS file server on 127.0.0.1 (port 0, printed first): the package index.</summary>
    private Process StartIndex(string root)
    {
        const string Server = """
            import functools, http.server, ssl, sys
            root, cert, key = sys.argv[1:4]
            class Quiet(http.server.SimpleHTTPRequestHandler):
                def log_message(self, *args):
                    pass
            server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=root))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            print(server.server_address[1], flush=True)
            server.serve_forever()
            """;
        var start = new ProcessStartInfo("python3") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", Server, root, Path.Combine(_dir, "leaf.pem"), Path.Combine(_dir, "leaf.key") })
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start)!;
    }

    /// <summary>A CA (the Controller's --egress-ca) and a leaf for the index's name; returns the CA file.</summary>
    private static string WriteCertificates(string dir)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=hive toolchain test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var leafRequest = new CertificateRequest("CN=" + IndexHost, leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(IndexHost);
        leafRequest.CertificateExtensions.Add(san.Build());
        leafRequest.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var leaf = leafRequest.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), [7, 7, 7, 7]);
        File.WriteAllText(Path.Combine(dir, "ca.pem"), ca.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "leaf.pem"), leaf.ExportCertificatePem());
        File.WriteAllText(Path.Combine(dir, "leaf.key"), leafKey.ExportPkcs8PrivateKeyPem());
        return Path.Combine(dir, "ca.pem");
    }

    /// <summary>A minimal MCP client over Streamable HTTP: JSON-RPC requests, answers as JSON or server-sent events.</summary>
    private sealed class McpSession(HttpClient http, string path)
    {
        private string? _session;
        private int _id;

        public async Task InitializeAsync()
        {
            await CallAsync("initialize", new { protocolVersion = "2025-03-26", capabilities = new { }, clientInfo = new { name = "hive-toolchain-test", version = "1" } });
            await SendAsync(new { jsonrpc = "2.0", method = "notifications/initialized" });
        }

        /// <summary>Calls a tool; its structured result (or content), failing the test on a tool error.</summary>
        public async Task<JsonElement> ToolAsync(string name, object arguments)
        {
            var result = await CallAsync("tools/call", new { name, arguments });
            Assert.That(result.TryGetProperty("isError", out var isError) && isError.GetBoolean(), Is.False, $"{name}: {result}");
            return result.TryGetProperty("structuredContent", out var structured) ? structured : result.GetProperty("content");
        }

        public async Task<JsonElement> CallAsync(string method, object parameters)
        {
            var text = await SendAsync(new { jsonrpc = "2.0", id = ++_id, method, @params = parameters });
            var json = text.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).LastOrDefault() ?? text;
            var answer = JsonDocument.Parse(json).RootElement.Clone();
            Assert.That(answer.TryGetProperty("error", out var error), Is.False, $"{method}: {error}");
            return answer.GetProperty("result");
        }

        private async Task<string> SendAsync(object message)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(JsonSerializer.Serialize(message), Encoding.UTF8, "application/json") };
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
            if (_session is not null)
            {
                request.Headers.Add("Mcp-Session-Id", _session);
            }

            using var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            Assert.That(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
            if (response.Headers.TryGetValues("Mcp-Session-Id", out var ids))
            {
                _session = ids.First();
            }

            return text;
        }
    }
}
