using Google.Protobuf;
using Hive.Events.Log;
using Hive.Events.Spool;
using Hive.Protos.V1;
using Hive.Sbxd.Runtime;

namespace Hive.Sbxd.Events;

/// <summary>
/// The sole sequencer of a sandbox's events: one thread reads every producer's spool and Sbxd's
/// own events, appends them as one batch to the durable log (one write, one fsync: group commit),
/// then deletes what the log now holds and wakes the readers. Producers never wait for the fsync —
/// their write to the spool already survives their own crash — but nothing is acknowledged (spool
/// deleted, own events completed) before it is durable.
/// </summary>
internal sealed partial class EventIngest : IDisposable
{
    private const int BatchBytes = 4 * 1024 * 1024;
    // Spools are polled, not watched: an inotify wake-up per event cost more CPU than the whole
    // ingest (measured: +35% on a metadata-heavy workload). While events flow, every 5 ms — which
    // also makes each fsync carry a batch; after a second without any, every 40 ms.
    private static readonly TimeSpan ActivePoll = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(40);
    private static readonly TimeSpan RetentionInterval = TimeSpan.FromMinutes(1);

    private readonly string _name;
    private readonly ILogger _logger;
    private readonly EventLog _log;
    private readonly SpoolConsumer _spools;
    private readonly Lock _gate = new();
    private readonly List<(byte[] Payload, TaskCompletionSource Done)> _own = [];
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private TaskCompletionSource _committed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _passDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastRetention;

    public EventIngest(SandboxLayout layout, ILogger logger)
        : this(layout.Name, layout.SpoolDir, layout.EventsDir, new EventLogOptions { MaxBytes = (long)layout.Spec.EventsMaxBytes, MaxAge = TimeSpan.FromSeconds(layout.Spec.EventsMaxAgeSecs) }, logger)
    {
    }

    public EventIngest(string name, string spoolDir, string eventsDir, EventLogOptions options, ILogger logger)
    {
        _name = name;
        _logger = logger;
        Directory.CreateDirectory(spoolDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _log = EventLog.Open(eventsDir, options);
        _spools = new SpoolConsumer(spoolDir);

        // The checkpoint names the spool directory it belongs to: a sandbox created again under the
        // same name continues the log but starts with fresh (empty) spools, read from the start.
        var epoch = SpoolEpoch(spoolDir);
        _spools.Positions[EpochKey] = epoch;
        if (_log.Checkpoint.TryGetValue(EpochKey, out var logged) && logged == epoch)
        {
            foreach (var (source, position) in _log.Checkpoint)
            {
                _spools.Positions[source] = position;
            }
        }
        else
        {
            _log.Checkpoint.Clear(); // the previous incarnation's positions mean nothing for these spools
        }

        LastSeq = _log.LastSeq;
        _thread = new Thread(Run) { IsBackground = true, Name = "event-ingest" };
        _thread.Start();
    }

    /// <summary>Checkpoint key of the spool directory's identity (not a valid source name, so never a producer).</summary>
    private const string EpochKey = "#epoch";

    /// <summary>A random identity of the spool directory, created with it.</summary>
    private static ulong SpoolEpoch(string spoolDir)
    {
        var file = Path.Combine(spoolDir, ".epoch");
        if (File.Exists(file) && ulong.TryParse(File.ReadAllText(file).Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var existing))
        {
            return existing;
        }

        var epoch = BitConverter.ToUInt64(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var temp = file + ".tmp";
        File.WriteAllText(temp, epoch.ToString("x16", System.Globalization.CultureInfo.InvariantCulture));
        File.Move(temp, file, overwrite: true);
        return epoch;
    }

    /// <summary>Sequence number of the last durable event.</summary>
    public ulong LastSeq { get; private set; }

    /// <summary>Completes at the next commit (readers wait on it).</summary>
    public Task NextCommit
    {
        get
        {
            lock (_gate)
            {
                return _committed.Task;
            }
        }
    }

    /// <summary>Records one of Sbxd's own events; completes once it is durable, throws if it cannot be.</summary>
    public Task RecordAsync(Event e)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        e.TsUnixUs = e.TsUnixUs == 0 ? NowUs() : e.TsUnixUs;
        lock (_gate)
        {
            if (_stop.IsCancellationRequested)
            {
                done.SetException(new ObjectDisposedException(nameof(EventIngest), "the event log is closed"));
                return done.Task;
            }

            _own.Add((e.ToByteArray(), done));
        }

        Wake();
        return done.Task;
    }

    /// <summary>Completes once everything the spools hold now is durable.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        // Two full passes: the first may have started before the caller's last spool write.
        for (var i = 0; i < 2; i++)
        {
            Task pass;
            lock (_gate)
            {
                pass = _passDone.Task;
            }

            Wake();
            await pass.WaitAsync(cancellationToken);
        }
    }

    public static long NowUs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    public static Event Lifecycle(string kind, string detail, string component = "", int pid = 0) =>
        new() { Kind = kind, Lifecycle = new LifecycleEvent { Detail = detail, Component = component, Pid = pid } };

    private void Wake()
    {
        if (_wake.CurrentCount == 0)
        {
            _wake.Release();
        }
    }

    private void Run()
    {
        var payloads = new List<ReadOnlyMemory<byte>>();
        var own = new List<(byte[] Payload, TaskCompletionSource Done)>();
        var failures = 0;
        var lastEvent = 0L;
        while (true)
        {
            try
            {
                var poll = Environment.TickCount64 - lastEvent < 1000 ? ActivePoll : IdlePoll;
                _wake.Wait(failures > 0 ? TimeSpan.FromMilliseconds(Math.Min(5000, 100 << Math.Min(failures, 6))) : poll, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                // Closing: one last pass below, then out.
            }

            TaskCompletionSource pass;
            lock (_gate)
            {
                pass = _passDone;
                _passDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            try
            {
                do
                {
                    payloads.Clear();
                    own.Clear();
                    lock (_gate)
                    {
                        own.AddRange(_own);
                        _own.Clear();
                    }

                    // Sbxd's own events first: they are few and someone waits on each.
                    payloads.AddRange(own.Select(o => new ReadOnlyMemory<byte>(o.Payload)));
                    var spoolBytes = _spools.Collect(payloads, BatchBytes);
                    if (payloads.Count == 0)
                    {
                        break;
                    }

                    // Producers are read one after another; order the batch by when things happened, so an
                    // event that caused another (a file write during a command) comes before it.
                    var ordered = payloads.Select((p, i) => (Ts: LogFormat.TimestampOf(p.Span), Index: i, Payload: p)).OrderBy(x => x.Ts).ThenBy(x => x.Index).Select(x => x.Payload).ToList();
                    payloads.Clear();
                    payloads.AddRange(ordered);

                    try
                    {
                        LastSeq = _log.Append(payloads, _spools.Positions);
                    }
                    catch (IOException ex)
                    {
                        // Not durable: read the same spool records again next time; fail Sbxd's own events.
                        var epoch = _spools.Positions[EpochKey];
                        _spools.Positions.Clear();
                        foreach (var (source, position) in _log.Checkpoint)
                        {
                            _spools.Positions[source] = position;
                        }

                        _spools.Positions[EpochKey] = epoch;

                        foreach (var (_, done) in own)
                        {
                            done.TrySetException(ex);
                        }

                        failures++;
                        LogAppendFailed(_logger, _name, ex.Message);
                        break;
                    }

                    failures = 0;
                    lastEvent = Environment.TickCount64;
                    _spools.Release();
                    foreach (var (_, done) in own)
                    {
                        done.TrySetResult();
                    }

                    TaskCompletionSource committed;
                    lock (_gate)
                    {
                        committed = _committed;
                        _committed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    }

                    committed.TrySetResult();
                    if (spoolBytes < BatchBytes)
                    {
                        break;
                    }
                }
                while (true);

                if (Environment.TickCount64 - _lastRetention > RetentionInterval.TotalMilliseconds)
                {
                    _lastRetention = Environment.TickCount64;
                    _log.ApplyRetention(DateTimeOffset.UtcNow);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                failures++;
                LogAppendFailed(_logger, _name, ex.Message);
            }
            finally
            {
                pass.TrySetResult();
            }

            if (_stop.IsCancellationRequested)
            {
                return;
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _stop.Cancel();
        }

        _thread.Join(TimeSpan.FromSeconds(10));
        lock (_gate)
        {
            foreach (var (_, done) in _own)
            {
                done.TrySetException(new ObjectDisposedException(nameof(EventIngest), "the event log is closed"));
            }

            _own.Clear();
        }

        _spools.Dispose();
        _log.Dispose();
        _committed.TrySetResult();
    }

    [LoggerMessage(EventId = 40, Level = LogLevel.Error, Message = "Sandbox {Name}: events could not be made durable (retrying; producers slow down, nothing is dropped): {Reason}")]
    private static partial void LogAppendFailed(ILogger logger, string name, string reason);
}
