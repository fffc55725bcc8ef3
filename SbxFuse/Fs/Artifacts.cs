using System.Collections.Concurrent;
using System.Security.Cryptography;
using Hive.Interop;
using Hive.Interop.Fuse;
using Hive.SbxFuse.Audit;
using Hive.SbxFuse.Backing;

namespace Hive.SbxFuse.Fs;

/// <summary>How much host work one artifact hash may cost.</summary>
internal sealed record ArtifactLimits
{
    /// <summary>Files larger than this are recorded without a hash (<c>hash_skipped: "too large"</c>). Default 64 MiB.</summary>
    public long MaxBytes { get; init; } = 64L << 20;

    /// <summary>CPU time one hash may use before it is abandoned (<c>hash_skipped: "cpu limit"</c>). Default 2 s.</summary>
    public TimeSpan MaxCpu { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Files up to this size are hashed on the spot, before the release is answered; larger ones in the background. 1 MiB.</summary>
    public long InlineBytes { get; init; } = 1L << 20;

    /// <summary>Hashes waiting for the background thread; more are recorded without one (<c>hash_skipped: "busy"</c>). 64.</summary>
    public int QueueLength { get; init; } = 64;
}

/// <summary>
/// <c>artifact.written</c>: a file the agent wrote, recorded with its size and SHA-256 when its last
/// handle is released (read back from the backing file, so it is what is stored).
/// </summary>
/// <remarks>
/// Hashing is the one thing SbxFuse does on the host's CPU in proportion to what the agent wrote,
/// and an agent can make that arbitrary: a 2 TiB sparse file and one appended byte is two system
/// calls inside the sandbox and minutes of hashing outside. So it is bounded three ways
/// (<see cref="ArtifactLimits"/>): a file over the size cap is not read at all; small files (most)
/// are hashed at once, in the release; the rest go to one background thread, so FUSE's worker
/// threads never wait for a hash and no other operation of the mount stalls behind one, and a hash
/// that uses more than its CPU budget is abandoned. Whenever a hash is not taken, the event says
/// so (<c>sha256</c> null, <c>hash_skipped</c> with the reason) — never silently.
/// </remarks>
internal sealed unsafe class Artifacts : IDisposable
{
    private const int BufferSize = 1 << 20;

    private readonly AuditLog _audit;
    private readonly ArtifactLimits _limits;
    private readonly BackingTree _tree;
    private readonly string _mount;
    private readonly BlockingCollection<Job> _queue;
    private readonly Thread _worker;
    private readonly object _gate = new();

    /// <summary>Jobs the background thread has not finished; a rename of their file moves their name along.</summary>
    private readonly List<Job> _pending = [];

    /// <summary>
    /// Files just written and closed, by path: a program that saves atomically (temporary file,
    /// then rename — editors, the files API, write_file) gets an artifact under the final name too.
    /// </summary>
    private readonly ConcurrentDictionary<string, (long Size, string? Sha256, string? Skipped)> _closed = new(StringComparer.Ordinal);

    public Artifacts(AuditLog audit, ArtifactLimits limits, BackingTree tree, string mount)
    {
        _audit = audit;
        _limits = limits;
        _tree = tree;
        _mount = mount;
        _queue = new BlockingCollection<Job>(limits.QueueLength);
        _worker = new Thread(Work) { IsBackground = true, Name = "artifact hashes", Priority = ThreadPriority.BelowNormal };
        _worker.Start();
    }

    /// <summary>Hashes finished in the background (for the tests).</summary>
    public int Hashed => Volatile.Read(ref _hashed);

    private int _hashed;

    /// <summary>
    /// The last handle of a written file was released: record it. Takes over <paramref name="fd"/>
    /// (closes it, now or when the background hash is done). False when the event could not be recorded.
    /// </summary>
    public bool Closed(int fd, string logical, bool readable)
    {
        var stat = default(Stat);
        if (Libc.fstat(fd, &stat) != 0 || (stat.Mode & 0xF000) != 0x8000)
        {
            Libc.close(fd);
            return true;
        }

        if (stat.Size > _limits.MaxBytes)
        {
            Libc.close(fd);
            return Record(logical, stat.Size, null, "too large");
        }

        if (stat.Size > _limits.InlineBytes)
        {
            var job = new Job(fd, readable, logical, stat.Ino);
            lock (_gate)
            {
                _pending.Add(job);
            }

            if (_queue.TryAdd(job))
            {
                return true;
            }

            lock (_gate)
            {
                _pending.Remove(job);
            }

            Libc.close(fd);
            return Record(logical, stat.Size, null, "busy");
        }

        try
        {
            var (size, sha, skipped) = Hash(fd, readable, stat.Size);
            return Record(logical, size, sha, skipped);
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>After a rename of a file: its artifact follows to the new name if it is still what was recorded (or still being hashed).</summary>
    public bool Renamed(string logicalFrom, string logicalTo)
    {
        lock (_gate)
        {
            foreach (var job in _pending)
            {
                if (job.Logical == logicalFrom)
                {
                    job.Logical = logicalTo;
                }
            }

            if (!_closed.TryRemove(logicalFrom, out var artifact))
            {
                return true;
            }

            var stat = StatLogical(logicalTo);
            var same = stat is { } s && s.Size == artifact.Size && (s.Mode & 0xF000) == 0x8000;
            return !same || Record(logicalTo, artifact.Size, artifact.Sha256, artifact.Skipped);
        }
    }

    /// <summary>The attributes of the entry at a logical path now (null if there is none), not following symlinks.</summary>
    private Stat? StatLogical(string logical)
    {
        var fusePath = _mount == "/" ? logical : logical.Length == _mount.Length ? "/" : logical[_mount.Length..];
        var (dirFd, name, error) = _tree.Parent(fusePath);
        if (error != 0)
        {
            return null;
        }

        var stat = default(Stat);
        var found = Libc.fstatat(dirFd, name, &stat, Libc.AT_SYMLINK_NOFOLLOW) == 0;
        _tree.Release(dirFd);
        return found ? stat : null;
    }

    private bool Record(string logical, long size, string? sha256, string? skipped)
    {
        if (_closed.Count > 4096)
        {
            _closed.Clear(); // bounded: only the most recent saves matter
        }

        _closed[logical] = (size, sha256, skipped);
        return _audit.TryRecordArtifact(logical, size, sha256, skipped);
    }

    private void Work()
    {
        foreach (var job in _queue.GetConsumingEnumerable())
        {
            try
            {
                HashInBackground(job);
            }
            catch (Exception ex)
            {
                // Never take the mount down: the file is served already; only its record is missing.
                Console.Error.WriteLine($"hive-sbxfuse: hashing {job.ClosedAs} failed: {ex.Message}");
            }
            finally
            {
                Libc.close(job.Fd);
            }
        }
    }

    private void HashInBackground(Job job)
    {
        var stat = default(Stat);
        var (size, sha, skipped) = Libc.fstat(job.Fd, &stat) == 0 ? Hash(job.Fd, job.Readable, stat.Size) : (0, null, "unreadable");
        lock (_gate)
        {
            _pending.Remove(job);
            var recorded = Record(job.ClosedAs, size, sha, skipped);

            // Renamed while it was hashed (an atomic save): the final name gets it too, if it is the same file.
            if (job.Logical != job.ClosedAs && StatLogical(job.Logical) is { } now && now.Ino == job.Ino)
            {
                recorded &= Record(job.Logical, size, sha, skipped);
            }

            if (!recorded)
            {
                Console.Error.WriteLine($"hive-sbxfuse: the artifact event of {job.ClosedAs} could not be recorded");
            }
        }

        Interlocked.Increment(ref _hashed);
    }

    /// <summary>
    /// SHA-256 of what is stored. A file that fits the buffer (most of them) is read once and hashed
    /// in one call; a larger one, or one that grew meanwhile, incrementally to its end — as long as
    /// it stays within the size cap and the thread within its CPU budget.
    /// </summary>
    private (long Size, string? Sha256, string? Skipped) Hash(int fd, bool readable, long sizeHint)
    {
        // A write-only handle: hash through a read-only descriptor of the same file.
        var reader = readable ? fd : Libc.openat(Libc.AT_FDCWD, "/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        if (reader < 0)
        {
            return (sizeHint, null, "unreadable");
        }

        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            fixed (byte* p = buffer)
            {
                var first = Libc.pread(reader, p, BufferSize, 0);
                if (first < 0)
                {
                    return (Math.Max(0, sizeHint), null, "unreadable");
                }

                if (first < BufferSize && sizeHint < BufferSize)
                {
                    var next = first == 0 ? 0 : Libc.pread(reader, p + first, 1, first);
                    if (next == 0)
                    {
                        return (first, Convert.ToHexStringLower(SHA256.HashData(buffer.AsSpan(0, (int)first))), null);
                    }
                }

                var cpuStart = Libc.ThreadCpuTime();
                using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                sha.AppendData(buffer, 0, (int)first);
                long offset = first;
                while (first > 0)
                {
                    if (offset > _limits.MaxBytes)
                    {
                        return (offset, null, "too large"); // it grew past the cap while we read
                    }

                    if (Libc.ThreadCpuTime() - cpuStart > _limits.MaxCpu)
                    {
                        return (offset, null, "cpu limit");
                    }

                    var n = Libc.pread(reader, p, BufferSize, offset);
                    if (n < 0)
                    {
                        return (offset, null, "unreadable");
                    }

                    if (n == 0)
                    {
                        break;
                    }

                    sha.AppendData(buffer, 0, (int)n);
                    offset += n;
                }

                return (offset, Convert.ToHexStringLower(sha.GetHashAndReset()), null);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            if (reader != fd)
            {
                Libc.close(reader);
            }
        }
    }

    /// <summary>
    /// At exit: the background thread finishes what is queued, within <paramref name="timeout"/>;
    /// whatever is left is recorded without a hash (<c>hash_skipped: "shutdown"</c>).
    /// </summary>
    public void Complete(TimeSpan timeout)
    {
        _queue.CompleteAdding();
        if (_worker.Join(timeout))
        {
            return;
        }

        lock (_gate)
        {
            foreach (var job in _pending)
            {
                _audit.TryRecordArtifact(job.ClosedAs, 0, null, "shutdown");
            }

            _pending.Clear();
        }
    }

    public void Dispose()
    {
        if (!_queue.IsAddingCompleted)
        {
            Complete(TimeSpan.FromSeconds(20));
        }
    }

    private sealed class Job(int fd, bool readable, string closedAs, ulong ino)
    {
        public int Fd { get; } = fd;

        public bool Readable { get; } = readable;

        /// <summary>The name it had when it was closed.</summary>
        public string ClosedAs { get; } = closedAs;

        public ulong Ino { get; } = ino;

        /// <summary>Its name now (a rename while it waits moves it).</summary>
        public string Logical { get; set; } = closedAs;
    }
}
