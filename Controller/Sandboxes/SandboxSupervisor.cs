using Hive.Controller.Hosting;
using Hive.Controller.Sandboxes.Store;

namespace Hive.Controller.Sandboxes;

/// <summary>
/// Re-adopts sandboxes at start-up, health-checks every Sbxd (restarting dead ones), finishes
/// lifecycle changes a crash interrupted, and destroys sandboxes whose timeout has passed.
/// </summary>
internal sealed partial class SandboxSupervisor(
    SandboxStore store,
    SandboxManager manager,
    ControllerOptions options,
    TimeProvider time,
    ILogger<SandboxSupervisor> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await FinishInterruptedAsync();
        var nextCheck = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            store.FlushCommands();
            await ReapExpiredAsync();
            if (time.GetUtcNow() >= nextCheck)
            {
                await CheckAllAsync(stoppingToken);
                nextCheck = time.GetUtcNow() + options.MonitorInterval;
            }

            try
            {
                await Task.Delay(options.ReaperInterval < options.MonitorInterval ? options.ReaperInterval : options.MonitorInterval, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                store.FlushCommands();
                return;
            }
        }
    }

    /// <summary>Rows left "creating" or "destroying" by a Controller crash are finished by destroying them.</summary>
    private async Task FinishInterruptedAsync()
    {
        foreach (var record in store.List().Where(r => r.Status is LifecycleStatus.Creating or LifecycleStatus.Destroying))
        {
            LogInterrupted(logger, record.Name, record.Status);
            store.SetStatus(record.Name, LifecycleStatus.Failed, $"interrupted while {record.Status}");
            await SafeAsync(record.Name, () => manager.DestroyAsync(record.Name));
        }
    }

    private async Task CheckAllAsync(CancellationToken stoppingToken)
    {
        var checks = store.List()
            .Where(r => r.Status is LifecycleStatus.Running or LifecycleStatus.Failed)
            .Select(r => SafeAsync(r.Name, () => manager.CheckAsync(r.Name, stoppingToken)));
        await Task.WhenAll(checks);
    }

    private async Task ReapExpiredAsync()
    {
        foreach (var name in store.ListExpired())
        {
            LogExpired(logger, name);
            await SafeAsync(name, () => manager.DestroyAsync(name));
        }
    }

    private async Task SafeAsync(string name, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (Exception ex)
        {
            LogSupervisionFailed(logger, name, ex.Message);
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Sandbox \"{Sandbox}\" expired; destroying it")]
    private static partial void LogExpired(ILogger logger, string sandbox);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Sandbox \"{Sandbox}\" was left {Status} by a previous Controller; destroying it")]
    private static partial void LogInterrupted(ILogger logger, string sandbox, string status);

    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "Supervising sandbox \"{Sandbox}\" failed: {Reason}")]
    private static partial void LogSupervisionFailed(ILogger logger, string sandbox, string reason);
}
