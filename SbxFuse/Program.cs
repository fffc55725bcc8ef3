using System.Runtime.InteropServices;
using System.Text.Json;
using Hive.Interop.Fuse;
using Hive.Policy.Fs;
using Hive.SbxFuse.Audit;
using Hive.SbxFuse.Backing;
using Hive.SbxFuse.Control;
using Hive.SbxFuse.Fs;

// hive-sbxfuse: one governed mount. The backing directory is served at TARGET; ACL rules are about
// the path the sandbox sees (MOUNT, e.g. /workspace); every operation is an event appended to the sandbox's spool DIR (Sbxd makes it durable).
//   hive-sbxfuse (--source DIR | --source-fd N) [--source-id DEV:INO] --target DIR --mount /workspace --spool DIR
//              [--source-name fs-0] [--acls FILE.json] [--pid-file FILE] [--control SOCKET] [--cache-timeout SECONDS]
//              [--hash-max-bytes N] [--hash-max-cpu-ms N] [--id-map BASE:COUNT]
// --source-fd: serve the directory behind an inherited descriptor (how Sbxd starts it: no path is
// looked up again); --source-id: refuse to serve unless the root is that directory.
// --hash-max-bytes / --hash-max-cpu-ms: bounds of one artifact hash (default 64 MiB, 2000 ms CPU).
// --id-map: the sandbox's user namespace (in-sandbox id u is host id BASE + u): callers and chown
// arguments are mapped to the sandbox's ids, which the backing directory stores; attributes back (IdMap).
// SIGHUP reloads the ACL file (already-open handles follow on their next operation);
// SIGTERM/SIGINT unmount and exit. --control serves hive.v1.FsControl (SetAcls, GetStats, Health, Drain).
string? source = null, target = null, mount = null, spool = null, spoolSource = "fs", aclFile = null, pidFile = null, control = null;
int? sourceFd = null;
(ulong Device, ulong Inode)? sourceId = null;
var cacheTimeout = 60.0;
var limits = new ArtifactLimits();
for (var i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--source": source = args[i + 1]; break;
        case "--source-fd" when int.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out var fd) && fd > 2:
            sourceFd = fd;
            break;
        case "--source-id" when args[i + 1].Split(':') is [var dev, var ino] && ulong.TryParse(dev, System.Globalization.CultureInfo.InvariantCulture, out var d) && ulong.TryParse(ino, System.Globalization.CultureInfo.InvariantCulture, out var n):
            sourceId = (d, n);
            break;
        case "--hash-max-bytes" when long.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out var bytes) && bytes >= 0:
            limits = limits with { MaxBytes = bytes };
            break;
        case "--hash-max-cpu-ms" when int.TryParse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms > 0:
            limits = limits with { MaxCpu = TimeSpan.FromMilliseconds(ms) };
            break;
        case "--target": target = args[i + 1]; break;
        case "--mount": mount = args[i + 1]; break;
        case "--spool": spool = args[i + 1]; break;
        case "--source-name": spoolSource = args[i + 1]; break;
        case "--acls": aclFile = args[i + 1]; break;
        case "--pid-file": pidFile = args[i + 1]; break;
        case "--control": control = args[i + 1]; break;
        case "--id-map" when IdMap.TryConfigure(args[i + 1]):
            break;
        case "--cache-timeout" when double.TryParse(args[i + 1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds is >= 0 and <= 60:
            cacheTimeout = seconds;
            break;
        default:
            Console.Error.WriteLine($"hive-sbxfuse: unknown option '{args[i]}'");
            return 2;
    }
}

if ((source is null) == (sourceFd is null) || target is null || mount is null || spool is null || !Hive.Events.Spool.SpoolFiles.IsValidSource(spoolSource) || args.Length % 2 != 0)
{
    Console.Error.WriteLine("usage: hive-sbxfuse (--source DIR | --source-fd N) [--source-id DEV:INO] --target DIR --mount /PATH --spool DIR [--source-name NAME] [--acls FILE.json] [--pid-file FILE] [--control SOCKET] [--cache-timeout SECONDS] [--hash-max-bytes N] [--hash-max-cpu-ms N] [--id-map BASE:COUNT|none]");
    return 2;
}

AclPolicy LoadPolicy() => aclFile is null
    ? AclPolicy.Default(mount)
    : AclPolicy.Parse(mount, (JsonSerializer.Deserialize<List<AclRuleJson>>(File.ReadAllText(aclFile)) ?? [])
        .Select((r, i) => AccessNames.TryParse(r.access ?? string.Empty, out var a) ? new AclRule(r.path ?? string.Empty, a) : throw new AclException($"acls[{i}]: access must be rw, ro or deny"))
        .ToList());

AclPolicy policy;
try
{
    policy = LoadPolicy();
}
catch (Exception ex) when (ex is AclException or JsonException or IOException)
{
    Console.Error.WriteLine("hive-sbxfuse: " + ex.Message);
    return 2;
}

// Request threads may act under a sandbox user's identity (CallerIdentity), which need not be able
// to read the install directory: every assembly SbxFuse can reach is loaded now, as itself.
PreloadAssemblies(typeof(GovernedFileSystem).Assembly);

BackingTree tree;
try
{
    tree = sourceFd is { } inherited ? new BackingTree(inherited) : new BackingTree(source!);
    if (sourceId is { } id)
    {
        tree.RequireIdentity(id.Device, id.Inode);
    }
}
catch (IOException ex)
{
    // Fail closed: never serve a directory other than the one the workspace was created with.
    Console.Error.WriteLine("hive-sbxfuse: refusing to serve: " + ex.Message);
    return 3;
}

using var ownedTree = tree;
using var auditLog = new AuditLog(spool, spoolSource, mount);
using var artifacts = new Artifacts(auditLog, limits, tree, mount);
var fs = new GovernedFileSystem(tree, auditLog, mount, policy, artifacts);
FuseCallbacks.Fs = fs;
KernelChannel.Created = fs.Created;
await using var controlServer = new ControlServer(fs, mount, Mount.RequestStop);
if (control is not null)
{
    await controlServer.StartAsync(control);
}

return Mount.Run(target, pidFile, cacheTimeout, () =>
{
    try
    {
        var (epoch, inodes) = fs.ReplacePolicy(LoadPolicy());
        Console.Error.WriteLine($"hive-sbxfuse: ACLs reloaded ({CacheLog.Describe(epoch, inodes)})");
    }
    catch (Exception ex) when (ex is AclException or JsonException or IOException)
    {
        Console.Error.WriteLine("hive-sbxfuse: ACL reload rejected, keeping the previous rules: " + ex.Message);
    }
});

static void PreloadAssemblies(System.Reflection.Assembly root)
{
    var seen = new HashSet<string>(StringComparer.Ordinal);
    var pending = new Queue<System.Reflection.Assembly>([root]);
    while (pending.TryDequeue(out var assembly))
    {
        foreach (var reference in assembly.GetReferencedAssemblies())
        {
            if (seen.Add(reference.FullName))
            {
                pending.Enqueue(System.Reflection.Assembly.Load(reference));
            }
        }
    }
}

internal sealed record AclRuleJson(string? path, string? access);

internal static class CacheLog
{
    public static string Describe(bool epoch, int inodes) =>
        (epoch ? "every cached name made stale" : "this kernel cannot make cached names stale at once (FUSE_NOTIFY_INC_EPOCH needs Linux 6.16): they expire with the entry timeout")
        + $", page cache and attributes of {inodes} open file(s) dropped";
}

internal static unsafe class Mount
{
    private static readonly object Gate = new();
    private static nint _fuse;

    /// <summary>Ends the loop and unmounts; a request after the loop ended (e.g. the mount was removed from outside) does nothing.</summary>
    public static void RequestStop()
    {
        lock (Gate)
        {
            if (_fuse != 0)
            {
                LibFuse.fuse_exit((void*)_fuse);
                LibFuse.fuse_unmount((void*)_fuse);
            }
        }
    }

    /// <summary>
    /// No default_permissions: with it the kernel re-reads a directory's attributes before every
    /// create or delete in it; modes are checked by the backing file system instead, as the caller
    /// (see CallerIdentity; the kernel still refuses to execute a file without any x bit). Timeouts: attributes,
    /// entries and misses are cached for <paramref name="cacheTimeout"/> seconds — 60 for a sandbox's
    /// own workspace (every change goes through this mount, so the kernel's cache cannot go stale;
    /// the bound only matters if someone edits the backing directory on the host), 0 for a shared
    /// one, so every mount sees the others' changes at once. auto_cache: the page cache is kept across opens unless size or mtime changed.
    /// (use_ino, hard_remove and nullpath_ok are set in init: see FuseCallbacks.Init.)
    /// </summary>
    private static string Options(double cacheTimeout)
    {
        var t = cacheTimeout.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return $"allow_other,fsname=hive,subtype=sbxfuse,entry_timeout={t},attr_timeout={t},negative_timeout={t},auto_cache";
    }

    /// <summary>
    /// The kernel reads a FUSE file ahead by 128 KiB by default; 1 MiB requests (the most FUSE
    /// allows) make cold sequential reads ~20% faster. The mount's device number comes from
    /// mountinfo (a stat() of the mount point would be a request to this very process).
    /// </summary>
    private static void RaiseReadahead(string target)
    {
        var full = Path.GetFullPath(target);
        var device = File.ReadLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .LastOrDefault(f => f.Length > 4 && f[4] == full)?[2];
        try
        {
            if (device is not null)
            {
                File.WriteAllText($"/sys/class/bdi/{device}/read_ahead_kb", "1024");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine("hive-sbxfuse: read-ahead stays at the default: " + ex.Message);
        }
    }

    public static int Run(string target, string? pidFile, double cacheTimeout, Action reload)
    {
        var ops = FuseCallbacks.Operations();
        string[] argv = ["hive-sbxfuse", "-o", Options(cacheTimeout)];
        var native = argv.Select(a => Marshal.StringToCoTaskMemUTF8(a)).ToArray();
        var argvPtr = (byte**)NativeMemory.Alloc((nuint)(native.Length + 1), (nuint)sizeof(nint));
        for (var i = 0; i < native.Length; i++)
        {
            argvPtr[i] = (byte*)native[i];
        }

        argvPtr[native.Length] = null;
        var args = new FuseArgs { Argc = native.Length, Argv = argvPtr, Allocated = 0 };
        var fuse = LibFuse.fuse_new(&args, &ops, (nuint)sizeof(FuseOperations), null);
        if (fuse is null)
        {
            Console.Error.WriteLine("hive-sbxfuse: fuse_new failed");
            return 1;
        }

        if (LibFuse.fuse_mount(fuse, target) != 0)
        {
            Console.Error.WriteLine($"hive-sbxfuse: cannot mount on {target}");
            LibFuse.fuse_destroy(fuse);
            return 1;
        }

        if (!KernelChannel.Install(LibFuse.fuse_get_session(fuse)))
        {
            Console.Error.WriteLine("hive-sbxfuse: cannot take over the device I/O");
            LibFuse.fuse_unmount(fuse);
            LibFuse.fuse_destroy(fuse);
            return 1;
        }

        // The kernel sets the read-ahead when it gets the INIT reply, so raise it once INIT is through.
        _ = FuseCallbacks.Initialized.Task.ContinueWith(_ => Task.Delay(100).ContinueWith(_ =>
        {
            RaiseReadahead(target);
            Console.Error.WriteLine(KernelChannel.KillprivV2 ? "hive-sbxfuse: the kernel leaves set-ID clearing to us (no security.capability lookup per write)" : "hive-sbxfuse: the kernel checks security.capability before writes");
        }, TaskScheduler.Default), TaskScheduler.Default);
        lock (Gate)
        {
            _fuse = (nint)fuse;
        }

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            RequestStop();
        }

        // Started under nohup (or as a background job) SIGHUP/SIGINT arrive ignored: make them ours again.
        Hive.Interop.Libc.RestoreIgnoredSignals(Hive.Interop.Libc.SIGHUP, Hive.Interop.Libc.SIGINT, Hive.Interop.Libc.SIGTERM);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            reload();
        });
        Console.Error.WriteLine($"hive-sbxfuse: serving {target}");
        if (pidFile is not null)
        {
            File.WriteAllText(pidFile, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var config = LibFuse.fuse_loop_cfg_create();
        LibFuse.fuse_loop_cfg_set_max_threads(config, 16);
        var rc = LibFuse.fuse_loop_mt(fuse, config);
        LibFuse.fuse_loop_cfg_destroy(config);


        lock (Gate)
        {
            _fuse = 0;
            LibFuse.fuse_destroy(fuse);
        }
        foreach (var p in native)
        {
            Marshal.FreeCoTaskMem(p);
        }

        NativeMemory.Free(argvPtr);
        return rc == 0 ? 0 : 1;
    }
}
