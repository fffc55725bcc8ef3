using Hive.Controller.Hosting;
using Hive.Controller.Sandboxes.Store;
using Hive.Events.Log;

namespace Hive.Controller.Events;

/// <summary>Retention of destroyed sandboxes' event logs (a live sandbox's Sbxd applies it to its own log).</summary>
internal sealed partial class EventRetention(ControllerOptions options, EventFeeds feeds, SandboxStore store, TimeProvider time, ILogger<EventRetention> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var limits = new EventLogOptions { MaxBytes = options.EventsMaxBytes, MaxAge = options.EventsMaxAge };
        while (!stoppingToken.IsCancellationRequested)
        {
            foreach (var name in feeds.Logs().Where(n => store.Find(n) is null))
            {
                try
                {
                    if (OrphanLogRetention.Apply(feeds.LogDir(name), limits, time.GetUtcNow()))
                    {
                        LogRemoved(logger, name);
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    LogFailed(logger, name, ex.Message);
                }
            }

            await Task.Delay(TimeSpan.FromMinutes(10), time, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    [LoggerMessage(EventId = 510, Level = LogLevel.Information, Message = "Event log of destroyed sandbox \"{Sandbox}\" removed (retention)")]
    private static partial void LogRemoved(ILogger logger, string sandbox);

    [LoggerMessage(EventId = 511, Level = LogLevel.Warning, Message = "Retention of the event log of \"{Sandbox}\" failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string sandbox, string reason);
}
