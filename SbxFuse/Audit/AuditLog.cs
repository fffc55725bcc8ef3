using Hive.Events.Spool;
using Hive.Protos.V1;

namespace Hive.SbxFuse.Audit;

/// <summary>One file operation as recorded.</summary>
internal readonly record struct FsEvent(string Op, string Path, string Decision, long Bytes, long DurationUs, int Errno, string? Target = null);

/// <summary>
/// Hands every operation to Sbxd as an event in this mount's spool (one <c>write(2)</c> each; Sbxd
/// sequences them into the sandbox's durable log). Fail-closed: <see cref="TryRecord"/> returning
/// false makes the operation fail with EIO — nothing happens that is not on record.
/// </summary>
internal sealed class AuditLog(string spoolDir, string source, string mount) : IDisposable
{
    private readonly SpoolWriter _spool = new(spoolDir, source) { RotateAs = Fs.CallerIdentity.RunAsSelf };

    /// <summary>False while the sandbox's event budget is exhausted: the operation is refused (EDQUOT), not done unrecorded.</summary>
    public bool Admit() => _spool.Admit();

    public bool TryRecord(in FsEvent e)
    {
        var body = new Protos.V1.FsEvent
        {
            Op = e.Op,
            Mount = mount,
            Path = e.Path,
            Bytes = e.Bytes,
            DurationUs = e.DurationUs,
            Errno = e.Errno,
        };
        if (e.Target is not null)
        {
            body.Target = e.Target;
        }

        return _spool.TryAppend(new Event { TsUnixUs = NowUs(), Kind = "fs." + e.Op, Decision = e.Decision, Fs = body });
    }

    /// <summary>
    /// <c>artifact.written</c>: a file the agent wrote, as stored when its last handle closed; without
    /// a hash, <paramref name="hashSkipped"/> says why ("too large", "cpu limit", "busy", ...).
    /// </summary>
    public bool TryRecordArtifact(string path, long size, string? sha256, string? hashSkipped = null) =>
        _spool.TryAppend(new Event
        {
            TsUnixUs = NowUs(),
            Kind = "artifact.written",
            Artifact = new ArtifactEvent { Mount = mount, Path = path, Size = size, Sha256 = sha256 ?? string.Empty, HashSkipped = hashSkipped ?? string.Empty },
        });

    /// <summary>Makes every event so far survive a host crash (on the agent's fsync, and on drain).</summary>
    public bool Sync() => _spool.Sync();

    private static long NowUs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public void Dispose() => _spool.Dispose();
}
