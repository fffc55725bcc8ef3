using System.Runtime.InteropServices;
using System.Text;

namespace Hive.Interop;

/// <summary>
/// One posix_spawn(3): attributes, file actions and the native strings they need, freed together.
/// Every child starts with all signal dispositions at their defaults (the .NET runtime ignores
/// SIGPIPE, which a child must not inherit) and an empty signal mask; the caller adds a new
/// session, descriptor moves and a working directory as it needs.
/// </summary>
/// <remarks>
/// System.Diagnostics.Process cannot start a child in a new session, hand it a descriptor other
/// than stdio without leaking that descriptor into every other child started meanwhile, or start
/// without a thread of its own — hence this small wrapper over libc.
/// </remarks>
public sealed unsafe class SpawnRequest : IDisposable
{
    private readonly void* _attr = NativeMemory.AllocZeroed(Libc.SpawnAttrSize);
    private readonly void* _actions = NativeMemory.AllocZeroed(Libc.SpawnFileActionsSize);
    private readonly List<nint> _strings = [];
    private short _flags = (short)(Libc.POSIX_SPAWN_SETSIGDEF | Libc.POSIX_SPAWN_SETSIGMASK);

    public SpawnRequest()
    {
        Libc.posix_spawnattr_init(_attr);
        Libc.posix_spawn_file_actions_init(_actions);
        var all = stackalloc byte[Libc.SigSetSize];
        var none = stackalloc byte[Libc.SigSetSize];
        Libc.sigfillset(all);
        Libc.sigdelset(all, Libc.SIGKILL);
        Libc.sigdelset(all, 19); // SIGSTOP cannot be defaulted either
        Libc.sigemptyset(none);
        Libc.posix_spawnattr_setsigdefault(_attr, all);
        Libc.posix_spawnattr_setsigmask(_attr, none);
    }

    /// <summary>The child leads a new session (and process group) of its own.</summary>
    public SpawnRequest NewSession()
    {
        _flags |= (short)Libc.POSIX_SPAWN_SETSID;
        return this;
    }

    /// <summary>The child's descriptor <paramref name="to"/> is ours <paramref name="from"/> (which must not equal it).</summary>
    public SpawnRequest Dup2(int from, int to)
    {
        Libc.posix_spawn_file_actions_adddup2(_actions, from, to);
        return this;
    }

    /// <summary>The child starts in <paramref name="directory"/>.</summary>
    public SpawnRequest Chdir(string directory)
    {
        Libc.posix_spawn_file_actions_addchdir_np(_actions, String(directory));
        return this;
    }

    /// <summary>
    /// Returns a function that spawns <paramref name="argv"/> with <paramref name="env"/> and returns
    /// the child's pid; the strings are converted now, so the function allocates nothing (a reaper
    /// can run it under its lock). Throws <see cref="SyscallException"/> if the spawn fails.
    /// </summary>
    public Func<int> Prepare(IReadOnlyList<string> argv, IReadOnlyList<string> env)
    {
        ArgumentOutOfRangeException.ThrowIfZero(argv.Count);
        Libc.posix_spawnattr_setflags(_attr, _flags);
        var path = String(argv[0]);
        var argvPtr = Array(argv);
        var envPtr = Array(env);
        var program = argv[0];
        return () =>
        {
            var rc = Libc.posix_spawn(out var pid, path, _actions, _attr, argvPtr, envPtr);
            return rc == 0 ? pid : throw new SyscallException("posix_spawn", rc, program);
        };
    }

    public void Dispose()
    {
        Libc.posix_spawn_file_actions_destroy(_actions);
        Libc.posix_spawnattr_destroy(_attr);
        NativeMemory.Free(_attr);
        NativeMemory.Free(_actions);
        foreach (var p in _strings)
        {
            NativeMemory.Free((void*)p);
        }
    }

    private byte* String(string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException("strings passed to a process must not contain NUL");
        }

        var bytes = Encoding.UTF8.GetBytes(value);
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length + 1);
        _strings.Add((nint)p);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        p[bytes.Length] = 0;
        return p;
    }

    private byte** Array(IReadOnlyList<string> values)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(nint));
        _strings.Add((nint)array);
        for (var i = 0; i < values.Count; i++)
        {
            array[i] = String(values[i]);
        }

        return array;
    }
}
