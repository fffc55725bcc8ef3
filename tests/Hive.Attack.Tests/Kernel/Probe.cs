namespace Hive.Attack.Tests.Kernel;

/// <summary>
/// Python run inside a sandbox to make raw system calls the way an exploit would (ctypes, no
/// libc wrapper in between), so an attempt sees exactly the kernel's (or the filter's) answer.
/// </summary>
internal static class Probe
{
    /// <summary>
    /// <c>sc(nr, *args)</c> makes syscall <c>nr</c> and returns <c>"OK"</c> or the errno's name
    /// (a clone child that got through exits at once); <c>cstr(b)</c> and <c>buf(n)</c> give
    /// pointers; <c>try_open(path, flags)</c>, <c>try_mkdir(path)</c> and <c>try_write(path, data)</c> return "OK" or the errno's name.
    /// </summary>
    public const string Prelude = """
        import ctypes, errno, os, socket, struct, sys, time
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        _keep = []

        def cstr(b):
            p = ctypes.c_char_p(b)
            _keep.append(p)
            return p

        def buf(n, data=b""):
            b = ctypes.create_string_buffer(data, n)
            _keep.append(b)
            return ctypes.addressof(b)

        def sc(nr, *args):
            ctypes.set_errno(0)
            r = libc.syscall(ctypes.c_long(nr), *[a if isinstance(a, ctypes.c_char_p) else ctypes.c_long(a) for a in args])
            if r == 0 and nr in (56, 435):
                os._exit(0)
            if r < 0:
                return errno.errorcode[ctypes.get_errno()]
            if nr in (56, 435):
                os.waitpid(r, 0)
            return "OK"

        def name(e):
            return errno.errorcode[e.errno]

        def try_open(path, flags=os.O_RDONLY):
            try:
                os.close(os.open(path, flags))
                return "OK"
            except OSError as e:
                return name(e)

        def try_mkdir(path):
            try:
                os.mkdir(path)
                return "OK"
            except OSError as e:
                return name(e)

        def try_write(path, data):
            try:
                with open(path, "w") as f:
                    f.write(data)
                return "OK"
            except OSError as e:
                return name(e)
        """;

    /// <summary>Runs a shell command as root in <paramref name="sandbox"/>.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> ShAsync(ControllerProcess controller, string sandbox, string command)
    {
        var result = await controller.ExecAsync(sandbox, command, timeout: 120);
        return (result.GetProperty("exit_code").GetInt32(), result.GetProperty("stdout").GetString() ?? string.Empty, result.GetProperty("stderr").GetString() ?? string.Empty);
    }

    /// <summary>Runs <see cref="Prelude"/> + <paramref name="script"/> with the sandbox's python3, as root; its stdout, trimmed.</summary>
    public static async Task<string> RunAsync(ControllerProcess controller, string sandbox, string script)
    {
        var encoded = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(Prelude + "\n" + script + "\n"));
        var (exitCode, stdout, stderr) = await ShAsync(controller, sandbox, $"echo {encoded} | base64 -d > /tmp/probe.py && python3 /tmp/probe.py");
        Assert.That(exitCode, Is.Zero, $"the probe itself failed: {stdout}\n{stderr}");
        return stdout.Trim();
    }
}
