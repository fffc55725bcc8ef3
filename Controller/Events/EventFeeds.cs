using System.Collections.Concurrent;
using Hive.Controller.Hosting;
using Hive.Controller.Sandboxes.Sbxd;
using Hive.Controller.Sandboxes.Store;
using Hive.Protos.V1;
using Hive.Wire;

namespace Hive.Controller.Events;

/// <summary>
/// How far each sandbox's log may be read, and when to look again. While its Sbxd runs, one
/// <c>WatchEvents</c> stream per sandbox gives the durable watermark after every commit; without a
/// Sbxd (destroyed, or restarting) nothing new is written, and readers take every complete batch.
/// </summary>
internal sealed partial class EventFeeds(ControllerOptions options, SbxdLauncher launcher, SandboxStore store, ILogger<EventFeeds> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, Feed> _feeds = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();

    public string LogDir(string name) => Path.Combine(options.EventsDir, name);

    /// <summary>Names of every sandbox with a log (existing or destroyed but retained), sorted.</summary>
    public List<string> Logs() =>
        Directory.Exists(options.EventsDir)
            ? [.. Directory.EnumerateDirectories(options.EventsDir).Select(Path.GetFileName).OfType<string>().Where(Sandboxes.Config.SandboxConfigValidator.IsValidName).Order(StringComparer.Ordinal)]
            : [];

    public Feed Get(string name) => _feeds.GetOrAdd(name, n =>
    {
        var feed = new Feed();
        _ = Task.Run(() => WatchAsync(n, feed));
        return feed;
    });

    private async Task WatchAsync(string name, Feed feed)
    {
        while (!_stop.IsCancellationRequested)
        {
            if (store.Find(name) is null)
            {
                feed.Set(ulong.MaxValue);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                continue;
            }

            try
            {
                using var channel = GrpcChannel.ForUnixSocket(launcher.SocketPath(name));
                await foreach (var committed in channel.ServerStreamingAsync<WatchEventsRequest, EventsCommitted>(
                    "/hive.v1.Sandbox/WatchEvents", new WatchEventsRequest(), new CallOptions(null, _stop.Token)))
                {
                    feed.Set(committed.LastSeq);
                }
            }
            catch (Exception ex) when (ex is RpcException or IOException or OperationCanceledException or System.Net.Http.HttpRequestException)
            {
                if (_stop.IsCancellationRequested)
                {
                    return;
                }

                LogWatchLost(logger, name, ex.Message);
            }

            // Sbxd is away: complete batches are all there is; look again shortly.
            feed.Set(ulong.MaxValue);
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), _stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var feed in _feeds.Values)
        {
            feed.Set(ulong.MaxValue);
        }
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Debug, Message = "Sandbox \"{Sandbox}\": event watch ended ({Reason}); retrying")]
    private static partial void LogWatchLost(ILogger logger, string sandbox, string reason);

    /// <summary>One sandbox's watermark and change signal.</summary>
    internal sealed class Feed
    {
        private readonly Lock _gate = new();
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes once the first watermark is known (from Sbxd, or that there is none).</summary>
        public Task Ready => _ready.Task;

        /// <summary>Read no event beyond this (ulong.MaxValue = every complete batch).</summary>
        public ulong Limit { get; private set; }

        /// <summary>Completes at the next change of <see cref="Limit"/> (a commit).</summary>
        public Task Changed
        {
            get
            {
                lock (_gate)
                {
                    return _changed.Task;
                }
            }
        }

        public void Set(ulong limit)
        {
            TaskCompletionSource changed;
            lock (_gate)
            {
                Limit = limit;
                changed = _changed;
                _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            changed.TrySetResult();
            _ready.TrySetResult();
        }
    }
}
