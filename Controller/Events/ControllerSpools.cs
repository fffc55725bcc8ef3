using System.Collections.Concurrent;
using Hive.Controller.Api;
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
            return Writer(sandbox).TryAppend(e);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Admission of an operation the Controller records (exec, MCP tool calls, ingress): 507 while
    /// the sandbox's event budget is exhausted — the operation is refused, not done unrecorded.
    /// </summary>
    public void RequireBudget(string sandbox)
    {
        SpoolWriter writer;
        try
        {
            writer = Writer(sandbox);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return; // TryRecord fails the same way next and answers 503
        }

        if (!writer.Admit())
        {
            var usage = string.Empty;
            try
            {
                var (budget, used) = writer.Budget.Bytes;
                usage = $" ({used} of {budget} bytes of event log)";
            }
            catch (ObjectDisposedException)
            {
                // The sandbox is being destroyed: the refusal stands without the figures.
            }

            throw new ApiException(StatusCodes.Status507InsufficientStorage,
                $"sandbox '{sandbox}': its event budget is exhausted{usage}, so the operation was not done; raise it with PUT /api/v1/hiveboxes/{sandbox}/events/budget");
        }
    }

    /// <summary>The Controller's events come from API callers, not from the sandbox: they are never held back by its rate budget.</summary>
    private SpoolWriter Writer(string sandbox) =>
        _writers.GetOrAdd(sandbox, static (name, l) => new SpoolWriter(l.SpoolDir(name), "controller") { StallTimeout = TimeSpan.FromSeconds(5), Throttled = false }, launcher);

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
