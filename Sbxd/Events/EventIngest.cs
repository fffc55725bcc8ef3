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
/// <remarks>
/// It also keeps the sandbox's event budget: it configures the shared <see cref="EventBudget"/>
/// (rate, burst, aggregation window), never lets retention touch this life's history, and when
/// that history reaches the byte budget it records <c>audit.budget_exhausted</c> and sets the flag
/// that makes producers refuse new operations — until the operator raises the budget
/// (<see cref="SetBudgetAsync"/>). Waits for the rate are reported as <c>audit.throttled</c>.
/// </remarks>
internal sealed partial class EventIngest : IDisposable
{
    private const int BatchBytes = 4 * 1024 * 1024;
    // Spools are polled, not watched: an inotify wake-up per event cost more CPU than the whole
    // ingest (measured: +35% on a metadata-heavy workload). While events flow, every 5 ms — which
    // also makes each fsync carry a batch; after a second without any, every 40 ms.
    private static readonly TimeSpan ActivePoll = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan IdlePoll = TimeSpan.FromMilliseconds(40);
    private static readonly TimeSpan RetentionInterval = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan ThrottleReportInterval = TimeSpan.FromSeconds(10);

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
    private int _retainedAtSegments;

    // The budget. _budgetGate orders the ingest thread's and the API's changes of it.
    private readonly Lock _budgetGate = new();
    private readonly EventBudget? _shared;
    private readonly EventBudgetOptions _limits;
    private readonly ulong _since;
    private readonly long _usedBase;
    private readonly long _writtenBase;
    private long _budgetBytes;
    private long _used;
    private bool _exhausted;
    private long _reportedThrottled;
    private long _reportedWaitedNs;
    private long _lastThrottleReport = long.MinValue / 2;

    public EventIngest(SandboxLayout layout, ILogger logger)
        : this(layout.Name, layout.SpoolDir, layout.EventsDir, LogOptions(layout.Spec), logger, EventBudgetOptions.From(layout.Spec))
    {
    }

    /// <summary>
    /// Retention limits from the spec. Segments are at most a sixteenth of the byte budget (16 MiB
    /// at the default 1 GiB, not under 64 KiB), so that retention trims a destroyed sandbox's log —
    /// and a budget is measured — in steps much finer than the budget.
    /// </summary>
    private static EventLogOptions LogOptions(SandboxSpec spec)
    {
        var budget = EventBudgetOptions.From(spec).BudgetBytes;
        var segment = new EventLogOptions().SegmentBytes;
        return new EventLogOptions
        {
            SegmentBytes = budget > 0 ? Math.Clamp(budget / 16, 64 * 1024, segment) : segment,
            MaxBytes = (long)spec.EventsMaxBytes,
            MaxAge = TimeSpan.FromSeconds(spec.EventsMaxAgeSecs),
        };
    }

    /// <param name="budget">The sandbox's event budget; null = none at all (the benchmarks' ingest-only mode).</param>
    public EventIngest(string name, string spoolDir, string eventsDir, EventLogOptions options, ILogger logger, EventBudgetOptions? budget = null)
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

            // Logs written before lives were marked: everything kept counts as this life.
            _since = _log.Checkpoint.TryGetValue(SinceKey, out var since) ? since : LogFormat.Segments(eventsDir)[0].FirstSeq;
        }
        else
        {
            // A new life: it starts in a segment of its own, so its history (which retention never
            // removes while it lives) and its bytes (what its budget counts) are whole segments.
            _log.Checkpoint.Clear(); // the previous incarnation's positions mean nothing for these spools
            _since = _log.LastSeq + 1;
            _spools.Positions[SinceKey] = _since;
            _log.Append([], _spools.Positions, newSegment: true);
        }

        _spools.Positions[SinceKey] = _since;
        _limits = budget ?? new EventBudgetOptions { BudgetBytes = 0, Rate = 0, Burst = 0 };
        _budgetBytes = _limits.BudgetBytes;
        _usedBase = _log.BytesFrom(_since);
        _writtenBase = _log.WrittenBytes;
        _used = _usedBase;
        if (budget is not null)
        {
            _shared = EventBudget.Open(spoolDir);
            _shared.Configure(budget.Rate, budget.Burst, budget.AggregateWindow);
            _reportedThrottled = _shared.Throttled;
            _reportedWaitedNs = _shared.Waited.Ticks * 100;
            CheckBudget();
        }

        LastSeq = _log.LastSeq;
        _thread = new Thread(Run) { IsBackground = true, Name = "event-ingest" };
        _thread.Start();
    }

    /// <summary>Checkpoint key of the spool directory's identity (not a valid source name, so never a producer).</summary>
    private const string EpochKey = "#epoch";

    /// <summary>Checkpoint key of the first sequence number of this sandbox's life (its own history starts there).</summary>
    private const string SinceKey = "#since";

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
                    Volatile.Write(ref _used, _usedBase + (_log.WrittenBytes - _writtenBase));
                    CheckBudget();
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

                if (Environment.TickCount64 - _lastRetention > RetentionInterval.TotalMilliseconds || _log.SegmentsStarted != _retainedAtSegments)
                {
                    _retainedAtSegments = _log.SegmentsStarted;
                    // Earlier lives of this name only: this life's history stays while it lives.
                    _lastRetention = Environment.TickCount64;
                    _log.ApplyRetention(DateTimeOffset.UtcNow, keepFrom: _since);
                }

                ReportThrottling();
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

    /// <summary>Bytes of this sandbox's life in its log.</summary>
    public long UsedBytes => Volatile.Read(ref _used);

    /// <summary>The budget as it stands (for the API).</summary>
    public EventBudgetStatus BudgetStatus()
    {
        lock (_budgetGate)
        {
            return new EventBudgetStatus
            {
                BudgetBytes = (ulong)_budgetBytes,
                UsedBytes = (ulong)UsedBytes,
                Exhausted = _exhausted,
                Refused = (ulong)Math.Max(0, _shared?.Refused ?? 0),
                Rate = _limits.Rate,
                Burst = (ulong)_limits.Burst,
                Throttled = (ulong)Math.Max(0, _shared?.Throttled ?? 0),
                WaitedMs = (ulong)(_shared?.Waited.TotalMilliseconds ?? 0),
                AggregateMs = (uint)_limits.AggregateWindow.TotalMilliseconds,
            };
        }
    }

    /// <summary>
    /// The operator changes the byte budget (0 = unlimited). On record first
    /// (<c>audit.budget_changed</c>, with the operations refused meanwhile); then, if the log is
    /// below the new budget, producers admit operations again — or, if it is lowered below what the
    /// log holds, they stop.
    /// </summary>
    public async Task<EventBudgetStatus> SetBudgetAsync(long bytes, string actor)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        var used = UsedBytes;
        var over = bytes > 0 && used >= bytes;
        bool wasExhausted;
        lock (_budgetGate)
        {
            wasExhausted = _exhausted;
        }

        var refused = wasExhausted && !over ? _shared?.Refused ?? 0 : 0;
        var detail = (wasExhausted, over) switch
        {
            (true, false) => "budget raised above what the log holds: operations are admitted again",
            (true, true) => "budget changed but still exhausted: operations that need an event stay refused",
            (false, true) => "budget lowered to what the log already holds: operations that need an event are refused from now on",
            _ => "budget changed",
        };
        await RecordAsync(new Event
        {
            Kind = "audit.budget_changed",
            Audit = new AuditEvent { Detail = detail, BudgetBytes = (ulong)bytes, UsedBytes = (ulong)used, Refused = (ulong)refused, Actor = actor },
        });

        lock (_budgetGate)
        {
            _budgetBytes = bytes;
            if (_exhausted && !(bytes > 0 && UsedBytes >= bytes))
            {
                _shared?.TakeRefused();
                _shared?.SetExhausted(false);
                _exhausted = false;
                LogBudgetRaised(_logger, _name, bytes, UsedBytes);
            }
        }

        CheckBudget(announced: true);
        return BudgetStatus();
    }

    /// <summary>
    /// Sets the exhausted flag once this life's history reaches the budget, with one event saying
    /// so (unless <paramref name="announced"/>: the operator's own change already did).
    /// </summary>
    private void CheckBudget(bool announced = false)
    {
        if (_shared is null)
        {
            return;
        }

        Event? exhausted = null;
        lock (_budgetGate)
        {
            var used = UsedBytes;
            _shared.Publish(_budgetBytes, used);
            if (_exhausted || _budgetBytes <= 0 || used < _budgetBytes)
            {
                return;
            }

            _exhausted = true;
            var wasSet = _shared.SetExhausted(true);
            if (!wasSet)
            {
                _shared.TakeRefused();
            }

            LogBudgetExhausted(_logger, _name, _budgetBytes, used);
            if (!wasSet && !announced)
            {
                exhausted = new Event
                {
                    Kind = "audit.budget_exhausted",
                    Audit = new AuditEvent
                    {
                        Detail = $"this sandbox's event log reached its budget of {_budgetBytes} bytes: operations that need an event are refused (files: EDQUOT, network: refused, exec: 507) until the budget is raised (PUT /api/v1/hiveboxes/{_name}/events/budget)",
                        BudgetBytes = (ulong)_budgetBytes,
                        UsedBytes = (ulong)used,
                    },
                };
            }
        }

        if (exhausted is not null)
        {
            _ = RecordAsync(exhausted).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
        }
    }

    /// <summary>audit.throttled: events waited for the rate budget (at most one report every 10 s).</summary>
    private void ReportThrottling()
    {
        if (_shared is null || Environment.TickCount64 - _lastThrottleReport < ThrottleReportInterval.TotalMilliseconds)
        {
            return;
        }

        var throttled = _shared.Throttled;
        if (throttled <= _reportedThrottled)
        {
            return;
        }

        var waitedNs = _shared.Waited.Ticks * 100;
        var e = new Event
        {
            Kind = "audit.throttled",
            Audit = new AuditEvent
            {
                Detail = $"producers waited for the rate budget of {_limits.Rate:0.##} events/s (burst {_limits.Burst}): the sandbox was slowed, no event was dropped",
                BudgetBytes = (ulong)Volatile.Read(ref _budgetBytes),
                UsedBytes = (ulong)UsedBytes,
                Throttled = (ulong)(throttled - _reportedThrottled),
                WaitedMs = (ulong)Math.Max(0, (waitedNs - _reportedWaitedNs) / 1_000_000),
            },
        };
        (_reportedThrottled, _reportedWaitedNs) = (throttled, waitedNs);
        _lastThrottleReport = Environment.TickCount64;
        _ = RecordAsync(e).ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
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
        _shared?.Dispose();
        _committed.TrySetResult();
    }

    [LoggerMessage(EventId = 41, Level = LogLevel.Warning, Message = "Sandbox {Name}: its event log reached its budget ({Budget} bytes, {Used} used): operations that need an event are refused until the budget is raised")]
    private static partial void LogBudgetExhausted(ILogger logger, string name, long budget, long used);

    [LoggerMessage(EventId = 42, Level = LogLevel.Information, Message = "Sandbox {Name}: event budget raised to {Budget} bytes ({Used} used): operations are admitted again")]
    private static partial void LogBudgetRaised(ILogger logger, string name, long budget, long used);

    [LoggerMessage(EventId = 40, Level = LogLevel.Error, Message = "Sandbox {Name}: events could not be made durable (retrying; producers slow down, nothing is dropped): {Reason}")]
    private static partial void LogAppendFailed(ILogger logger, string name, string reason);
}
