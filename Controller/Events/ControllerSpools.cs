using System.Collections.Concurrent;
using Hive.Controller.Sandboxes.Sbxd;
using Hive.Events.Spool;
using Hive.Protos.V1;

namespace Hive.Controller.Events;

/// <summary>
/// The Controller as an event producer (exec.*): one spool writer per sandbox in its state dir,
/// sequenced into the sandbox's log by its Sbxd like every other producer's events.
/// </summary>
internal sealed class ControllerSpools(SbxdLauncher launcher) : IDisposable
{
    private readonly ConcurrentDictionary<string, SpoolWriter> _writers = new(StringComparer.Ordinal);

    /// <summary>False when the event cannot be recorded: the caller must not go ahead (fail closed).</summary>
    public bool TryRecord(string sandbox, Event e)
    {
        e.TsUnixUs = e.TsUnixUs == 0 ? (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10 : e.TsUnixUs;
        try
        {
            var writer = _writers.GetOrAdd(sandbox, static (name, l) => new SpoolWriter(l.SpoolDir(name), "controller") { StallTimeout = TimeSpan.FromSeconds(5) }, launcher);
            return writer.TryAppend(e);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The sandbox was destroyed: its spool directory is gone.</summary>
    public void Forget(string sandbox)
    {
        if (_writers.TryRemove(sandbox, out var writer))
        {
            writer.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var writer in _writers.Values)
        {
            writer.Dispose();
        }
    }
}
