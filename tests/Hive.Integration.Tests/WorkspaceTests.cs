using System.Text.Json;

namespace Hive.Integration.Tests;

/// <summary>Governed workspaces end to end: SbxFuse mounts inside real sandboxes, ACLs, audit, persistence.</summary>
[TestFixture]
[CancelAfter(600_000)]
public sealed class WorkspaceTests : SharedControllerFixture
{
    private static object Fs() => new[]
    {
        new
        {
            backend = "local",
            mount = "/workspace",
            acls = new object[]
            {
                new { path = "/workspace/**", access = "rw" },
                new { path = "/workspace/inputs/**", access = "ro" },
                new { path = "/workspace/secrets/**", access = "deny" },
            },
        },
    };

    private string Backing(string name) => Directory.GetDirectories(Path.Combine(Controller.DataDir, "workspaces", name)).Single();

    [Test]
    public async Task Real_tools_work_and_acls_hold_inside_the_sandbox()
    {
        var name = Names.Unique("ws");
        await Controller.CreateAsync(new { name, fs = Fs() });
        try
        {
            var backing = Backing(name);
            Directory.CreateDirectory(Path.Combine(backing, "inputs"));
            Directory.CreateDirectory(Path.Combine(backing, "secrets"));
            await File.WriteAllTextAsync(Path.Combine(backing, "inputs", "data.csv"), "a,b\n");
            await File.WriteAllTextAsync(Path.Combine(backing, "secrets", "token"), "s3cr3t");

            var git = await Controller.ExecAsync(name, "cd /workspace && git init -q . && echo hi > f && git add f && git -c user.email=t@t -c user.name=t commit -q -m first && git log --oneline | wc -l", timeout: 60);
            Assert.That(git.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo("1"), git.ToString());
            var sqlite = await Controller.ExecAsync(name, "python3 -c \"import sqlite3; c = sqlite3.connect('/workspace/db.sqlite'); c.execute('pragma journal_mode=wal'); c.execute('create table t(x)'); c.executemany('insert into t values (?)', [(i,) for i in range(10)]); c.commit(); print(c.execute('select sum(x) from t').fetchone()[0])\"", timeout: 60);
            Assert.That(sqlite.GetProperty("stdout").GetString()!.Trim(), Is.EqualTo("45"), sqlite.ToString());
            var tar = await Controller.ExecAsync(name, "d=$(python3 -c 'import json, os; print(os.path.dirname(json.__file__))'); tar -C \"$d\" -cf - . | tar -C /workspace -xf - --one-top-level=pyjson && find /workspace/pyjson -type f | wc -l && rm -rf /workspace/pyjson && test ! -e /workspace/pyjson && echo removed", timeout: 60);
            Assert.That(tar.GetProperty("stdout").GetString(), Does.EndWith("removed\n"), tar.ToString());

            var read = await Controller.ExecAsync(name, "cat /workspace/inputs/data.csv");
            Assert.That(read.GetProperty("stdout").GetString(), Is.EqualTo("a,b\n"));
            var ro = await Controller.ExecAsync(name, "echo x > /workspace/inputs/new.csv");
            Assert.That(ro.GetProperty("exit_code").GetInt32(), Is.Not.Zero);
            Assert.That(ro.GetProperty("stderr").GetString(), Does.Contain("Read-only"));
            var deny = await Controller.ExecAsync(name, "cat /workspace/secrets/token");
            Assert.That(deny.GetProperty("exit_code").GetInt32(), Is.Not.Zero);
            Assert.That(deny.GetProperty("stdout").GetString(), Does.Not.Contain("s3cr3t"));
            var escape = await Controller.ExecAsync(name, "ln -s ../secrets/token /workspace/inputs-link 2>&1; cat /workspace/inputs-link 2>&1; cd /workspace/inputs && cat ../secrets/token 2>&1 || true");
            Assert.That(escape.GetProperty("stdout").GetString(), Does.Not.Contain("s3cr3t"), "symlinks and .. resolve to the denied path and are refused");
            var list = await Controller.ExecAsync(name, "ls -a /workspace");
            Assert.That(list.GetProperty("stdout").GetString(), Does.Not.Contain("secrets"), "denied entries are hidden");

            var audit = await Controller.WaitForEventsAsync(name, e => e.Any(x => x.GetProperty("path").GetString() == "/workspace/inputs-link"), kind: "fs");
            Assert.That(audit.Any(e => e.GetProperty("kind").GetString() == "fs.write" && e.GetProperty("path").GetString() == "/workspace/f"));
            Assert.That(audit.Any(e => e.GetProperty("path").GetString()!.StartsWith("/workspace/secrets", StringComparison.Ordinal) && e.GetProperty("decision").GetString() == "deny"));
            Assert.That(audit.Any(e => e.GetProperty("path").GetString() == "/workspace/inputs/new.csv" && e.GetProperty("errno").GetInt32() == 30));
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }

        Assert.That(await Host.LeftoversAsync(name, Controller.StateDir(name)), Is.Empty);
        Assert.That(File.ReadAllText("/proc/self/mountinfo"), Does.Not.Contain("fuse.sbxfuse").Or.Not.Contain(Controller.StateDir(name)));
    }

    [Test]
    public async Task Files_survive_destroy_and_recreate_by_name()
    {
        var name = Names.Unique("keep");
        await Controller.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        await Controller.ExecAsync(name, "echo remembered > /workspace/memory.txt");
        await Controller.DestroyAsync(name);
        Assert.That(await Host.LeftoversAsync(name, Controller.StateDir(name)), Is.Empty);

        await Controller.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        try
        {
            var back = await Controller.ExecAsync(name, "cat /workspace/memory.txt");
            Assert.That(back.GetProperty("stdout").GetString(), Is.EqualTo("remembered\n"));
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }

    [Test]
    public async Task A_killed_sbxfuse_is_remounted_in_place_and_no_acknowledged_write_is_lost()
    {
        var name = Names.Unique("heal");
        await Controller.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        try
        {
            var containerPid = File.ReadAllText(Path.Combine(Controller.StateDir(name), "container.pid")).Trim();

            // A writer appends numbered lines, fsyncs each, and only then acknowledges it in /tmp
            // (outside the workspace); failed writes (while SbxFuse is down) are retried.
            const string writer = """
                import os, time
                ack = open('/tmp/acked', 'a')
                i = 0
                deadline = time.time() + 6
                while time.time() < deadline:
                    try:
                        with open('/workspace/log.txt', 'a') as f:
                            f.write(f'{i}\n'); f.flush(); os.fsync(f.fileno())
                        ack.write(f'{i}\n'); ack.flush(); i += 1
                    except OSError:
                        time.sleep(0.02)
                open('/tmp/writer-done', 'w').close()
                """;
            await Controller.ExecAsync(name, $"cat > /tmp/writer.py <<'EOF'\n{writer}\nEOF\nsetsid python3 /tmp/writer.py >/dev/null 2>&1 < /dev/null &");
            await Task.Delay(1500);
            var pidFile = Path.Combine(Controller.StateDir(name), "fs", "sbxfuse-0.pid");
            var pid = File.ReadAllText(pidFile).Trim();
            var killed = DateTime.UtcNow;
            await Host.RunAsync("kill", "-KILL", pid);

            var deadline = killed.AddSeconds(60);
            string? Current() => File.Exists(pidFile) ? File.ReadAllText(pidFile).Trim() : null; // rewritten while remounting
            while (DateTime.UtcNow < deadline && (Current() is null || Current() == pid || (await Controller.ExecAsync(name, "test -w /workspace/log.txt")).GetProperty("exit_code").GetInt32() != 0))
            {
                await Task.Delay(100);
            }

            // A state, not a time: a new SbxFuse serves the workspace and it is writable from inside
            // again (the ceiling above is generous; how fast it happens is bench material).
            Assert.That(Current(), Is.Not.EqualTo(pid).And.Not.Null, "a new SbxFuse serves the workspace");
            Assert.That((await Controller.ExecAsync(name, "test -w /workspace/log.txt")).GetProperty("exit_code").GetInt32(), Is.Zero, "writable from inside again");
            Assert.That(File.ReadAllText(Path.Combine(Controller.StateDir(name), "container.pid")).Trim(), Is.EqualTo(containerPid), "the container was not restarted");

            while ((await Controller.ExecAsync(name, "test -e /tmp/writer-done")).GetProperty("exit_code").GetInt32() != 0)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the writer (a process started before the crash) finishes");
                await Task.Delay(200);
            }

            var check = await Controller.ExecAsync(name, "python3 -c \"acked = open('/tmp/acked').read().split(); stored = set(open('/workspace/log.txt').read().split()); print(len(acked), len([a for a in acked if a not in stored]))\"");
            var counts = check.GetProperty("stdout").GetString()!.Split(' ', StringSplitOptions.TrimEntries);
            Assert.That(int.Parse(counts[0], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(10), check.ToString());
            Assert.That(counts[1], Is.EqualTo("0"), "every acknowledged write is in the workspace");
            var write = await Controller.ExecAsync(name, "echo after > /workspace/b.txt && cat /workspace/b.txt && mount | grep -c ' /workspace '");
            Assert.That(write.GetProperty("stdout").GetString(), Does.StartWith("after\n"));
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }

        Assert.That(await Host.LeftoversAsync(name, Controller.StateDir(name)), Is.Empty);
    }

    [Test]
    public async Task Acls_change_live_through_the_api_and_survive_a_remount()
    {
        var name = Names.Unique("acl");
        await Controller.CreateAsync(new { name, fs = Fs() });
        try
        {
            // A process started before the change keeps a file open and appends to it every 50 ms.
            await Controller.ExecAsync(name, """
                cat > /tmp/holder.py <<'EOF'
                import time
                f = open('/workspace/held.txt', 'a', buffering=1)
                log = open('/tmp/holder.log', 'a', buffering=1)
                for i in range(200):
                    try:
                        f.write('x\n'); f.flush(); log.write('ok\n')
                    except OSError as e:
                        log.write(f'err {e.errno}\n')
                    time.sleep(0.05)
                EOF
                setsid python3 /tmp/holder.py >/dev/null 2>&1 < /dev/null &
                """);
            await Task.Delay(500);

            var tightened = await Controller.PatchAsync(name, new { fs = new[] { new { mount = "/workspace", acls = new[] { new { path = "/workspace/**", access = "ro" } } } } });
            Assert.That(tightened.GetProperty("id").GetString(), Is.EqualTo(name));
            Assert.That(tightened.GetProperty("fs")[0].GetProperty("acls")[0].GetProperty("access").GetString(), Is.EqualTo("ro"));
            var write = await Controller.ExecAsync(name, "echo y > /workspace/new.txt");
            Assert.That(write.GetProperty("exit_code").GetInt32(), Is.Not.Zero);
            Assert.That(write.GetProperty("stderr").GetString(), Does.Contain("Read-only"));
            await Task.Delay(300);
            var held = await Controller.ExecAsync(name, "tail -n 3 /tmp/holder.log");
            Assert.That(held.GetProperty("stdout").GetString(), Does.Contain("err 30"), "the already-open handle is refused on its next write");

            // The rules are stored: a restarted SbxFuse (crash) comes back with them.
            var pidFile = Path.Combine(Controller.StateDir(name), "fs", "sbxfuse-0.pid");
            var pid = File.ReadAllText(pidFile).Trim();
            await Host.RunAsync("kill", "-KILL", pid);
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!File.Exists(pidFile) || File.ReadAllText(pidFile).Trim() == pid || (await Controller.ExecAsync(name, "test -r /workspace/held.txt")).GetProperty("exit_code").GetInt32() != 0)
            {
                Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "SbxFuse was remounted");
                await Task.Delay(100);
            }

            Assert.That((await Controller.ExecAsync(name, "echo y > /workspace/new.txt")).GetProperty("exit_code").GetInt32(), Is.Not.Zero, "still read-only after the remount");

            await Controller.PatchAsync(name, new { fs = new[] { new { mount = "/workspace", acls = new[] { new { path = "/workspace/**", access = "rw" } } } } });
            var loosened = await Controller.ExecAsync(name, "echo y > /workspace/new.txt && cat /workspace/new.txt");
            Assert.That(loosened.GetProperty("stdout").GetString(), Is.EqualTo("y\n"));
            var detail = JsonDocument.Parse(await Controller.Http.GetStringAsync($"/api/v1/hiveboxes/{name}")).RootElement;
            Assert.That(detail.GetRawText(), Does.Contain("\"access\":\"rw\""));

            // Bad updates are refused with a clear message and change nothing.
            var unknown = await Controller.PatchAsync(name, new { fs = new[] { new { mount = "/elsewhere", acls = new[] { new { path = "/elsewhere/**", access = "ro" } } } } }, expectStatus: 400);
            Assert.That(unknown.GetProperty("error").GetString(), Does.Contain("no workspace is mounted at '/elsewhere'"));
            var bad = await Controller.PatchAsync(name, new { fs = new[] { new { mount = "/workspace", acls = new[] { new { path = "/etc/**", access = "rw" } } } } }, expectStatus: 400);
            Assert.That(bad.GetProperty("error").GetString(), Does.Contain("fs[0]"));
            await Controller.PatchAsync(name, new { }, expectStatus: 400);
            await Controller.PatchAsync(name, new { memory = "1g" }, expectStatus: 400);
            Assert.That((await Controller.ExecAsync(name, "echo z > /workspace/z.txt")).GetProperty("exit_code").GetInt32(), Is.Zero, "still rw");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }

        Assert.That(await Host.LeftoversAsync(name, Controller.StateDir(name)), Is.Empty);
    }

    [Test]
    public async Task A_virtualenv_and_pip_install_work_on_the_workspace()
    {
        var name = Names.Unique("pip");
        await Controller.CreateAsync(new { name, fs = new[] { new { mount = "/workspace" } } });
        try
        {
            // A real wheel, built in the sandbox (no network: pip installs it from a file).
            const string buildWheel = """
                import base64, hashlib, zipfile
                files = {
                    'hivedemo/__init__.py': b'ANSWER = 42\n',
                    'hivedemo-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\nName: hivedemo\nVersion: 1.0\n',
                    'hivedemo-1.0.dist-info/WHEEL': b'Wheel-Version: 1.0\nGenerator: hive-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
                }
                record = ''.join(f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}\n" for n, d in files.items())
                files['hivedemo-1.0.dist-info/RECORD'] = (record + 'hivedemo-1.0.dist-info/RECORD,,\n').encode()
                with zipfile.ZipFile('/tmp/hivedemo-1.0-py3-none-any.whl', 'w') as z:
                    for n, d in files.items():
                        z.writestr(n, d)
                """;
            await Controller.ExecAsync(name, $"cat > /tmp/wheel.py <<'EOF'\n{buildWheel}\nEOF\npython3 /tmp/wheel.py");
            var pip = await Controller.ExecAsync(
                name,
                "python3 -m venv /workspace/venv && /workspace/venv/bin/pip install -q --no-index --no-cache-dir /tmp/hivedemo-1.0-py3-none-any.whl && /workspace/venv/bin/python -c 'import hivedemo, sys; print(hivedemo.ANSWER, sys.prefix)' && /workspace/venv/bin/pip list --format=freeze 2>/dev/null | grep hivedemo",
                timeout: 300);
            Assert.That(pip.GetProperty("exit_code").GetInt32(), Is.Zero, pip.ToString());
            Assert.That(pip.GetProperty("stdout").GetString(), Is.EqualTo("42 /workspace/venv\nhivedemo==1.0\n"));
            var backing = Backing(name);
            Assert.That(File.Exists(Path.Combine(backing, "venv", "lib", "python3.11", "site-packages", "hivedemo", "__init__.py")), Is.True, "installed into the governed workspace");
        }
        finally
        {
            await Controller.DestroyAsync(name);
        }
    }
}
