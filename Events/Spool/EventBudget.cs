using System.Diagnostics;
using Hive.Interop;

namespace Hive.Events.Spool;

/// <summary>
/// A sandbox's event budget as every process of the sandbox sees it: one small file in its spool
/// directory (<c>.budget</c>), mapped shared. Sbxd configures it (rate, burst, aggregation window)
/// and sets <see cref="Exhausted"/> when the sandbox's log reaches its byte budget; producers
/// (SbxFuse, SbxProxy, the Controller) reserve rate, check admission and count what they refused.
/// </summary>
/// <remarks>
/// The rate budget is a generic cell rate algorithm over one shared word, the theoretical arrival
/// time (TAT) on <c>CLOCK_MONOTONIC</c>, which is the same clock in every process: an event may be
/// written at <c>max(TAT, now) − τ</c> and moves TAT by one interval <c>T = 1/rate</c>, with
/// <c>τ = burst · T</c>. Each reservation is one compare-and-swap, so producers in different
/// processes queue fairly and each waits for its own slot — nothing is dropped.
/// </remarks>
public sealed class EventBudget : IDisposable
{
    public const string FileName = ".budget";

    // Word layout of the file (little endian, 8 bytes each); zeros = nothing configured.
    private const int IntervalNs = 0;     // T; 0 = no rate limit
    private const int ToleranceNs = 1;    // τ = burst · T
    private const int Tat = 2;            // theoretical arrival time, CLOCK_MONOTONIC ns
    private const int ExhaustedFlag = 3;  // 1 while the log is at its byte budget
    private const int RefusedCount = 4;   // operations refused while exhausted, since the last take
    private const int ThrottledCount = 5; // events that had to wait for the rate, ever
    private const int WaitedNs = 6;       // how long they waited in all, ever
    private const int WindowNs = 7;       // aggregation window of denials; 0 = default, < 0 = off
    private const int BudgetBytesWord = 8; // the byte budget (for messages); 0 = unlimited
    private const int UsedBytesWord = 9;  // log bytes of this sandbox's life so far (for messages)
    private const int Words = 16;

    /// <summary>A reservation further ahead than this is stale (the clock restarted with the host): the bucket starts afresh.</summary>
    private const long MaxBacklogNs = 60L * 1_000_000_000;

    /// <summary>Default byte budget of a live sandbox's log (the Controller's <c>--events-budget</c>): 1 GiB.</summary>
    public const long DefaultBudgetBytes = 1024L * 1024 * 1024;

    /// <summary>
    /// Default rate budget (<c>--events-rate</c>): 20,000 events/s per sandbox, about twice the
    /// busiest second measured of a clone, a package install and a tree copy on a small VM
    /// (docs/API.md), with <see cref="DefaultBurst"/> on top.
    /// </summary>
    public const double DefaultRate = 20_000;

    /// <summary>Default burst (<c>--events-burst</c>): 200,000 events at full speed before the rate applies.</summary>
    public const long DefaultBurst = 200_000;

    /// <summary>Aggregation window when Sbxd configured none (<c>--events-aggregate</c>): 1 s.</summary>
    public static readonly TimeSpan DefaultAggregateWindow = TimeSpan.FromSeconds(1);

    private static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;

    private readonly SharedWords _words;

    private EventBudget(SharedWords words) => _words = words;

    /// <summary>Maps the budget file of the spool directory <paramref name="spoolDir"/>, creating it if needed.</summary>
    public static EventBudget Open(string spoolDir) => new(SharedWords.OpenOrCreate(Path.Combine(spoolDir, FileName), Words));

    /// <summary>Monotonic nanoseconds (the clock shared by the sandbox's processes).</summary>
    public static long NowNs() => (long)(Stopwatch.GetTimestamp() * NsPerTick);

    /// <summary>True while the sandbox's log is at its byte budget: new operations are refused.</summary>
    public bool Exhausted => _words.Read(ExhaustedFlag) != 0;

    /// <summary>Events that had to wait for the rate budget, since the file was created.</summary>
    public long Throttled => _words.Read(ThrottledCount);

    /// <summary>How long those waited in all.</summary>
    public TimeSpan Waited => TimeSpan.FromTicks(_words.Read(WaitedNs) / 100);

    /// <summary>The byte budget Sbxd enforces (0 = unlimited) and how much of it the sandbox's log uses.</summary>
    public (long Budget, long Used) Bytes => (_words.Read(BudgetBytesWord), _words.Read(UsedBytesWord));

    /// <summary>How long identical denials are gathered into one event; zero = not at all.</summary>
    public TimeSpan AggregateWindow => _words.Read(WindowNs) switch
    {
        0 => DefaultAggregateWindow,
        < 0 => TimeSpan.Zero,
        var ns => TimeSpan.FromTicks(ns / 100),
    };

    /// <summary>
    /// Admission of a new operation that needs an event: false (and counted) while the budget is
    /// exhausted — the caller refuses the operation instead of doing it unrecorded.
    /// </summary>
    public bool Admit()
    {
        if (_words.Read(ExhaustedFlag) == 0)
        {
            return true;
        }

        _words.Add(RefusedCount, 1);
        return false;
    }

    /// <summary>
    /// Reserves one event of the rate budget; returns how long the caller must wait before writing
    /// it (zero within the burst). The reservation is taken: the caller waits, it never gives up.
    /// </summary>
    public TimeSpan Reserve()
    {
        var interval = _words.Read(IntervalNs);
        if (interval <= 0)
        {
            return TimeSpan.Zero;
        }

        var tolerance = _words.Read(ToleranceNs);
        var now = NowNs();
        while (true)
        {
            var tat = _words.Read(Tat);
            var start = Math.Max(tat, now);
            if (start - now > tolerance + MaxBacklogNs)
            {
                start = now;
            }

            if (_words.CompareExchange(Tat, start + interval, tat) != tat)
            {
                continue;
            }

            var wait = start - tolerance - now;
            if (wait <= 0)
            {
                return TimeSpan.Zero;
            }

            _words.Add(ThrottledCount, 1);
            _words.Add(WaitedNs, wait);
            return TimeSpan.FromTicks(Math.Max(1, wait / 100));
        }
    }

    /// <summary>
    /// Sbxd, at start and on change: events per second (0 = unlimited) with a burst, and the
    /// aggregation window of denials (zero = off). The bucket starts full.
    /// </summary>
    public void Configure(double eventsPerSecond, long burst, TimeSpan aggregateWindow)
    {
        var interval = eventsPerSecond > 0 ? Math.Max(1L, (long)(1e9 / eventsPerSecond)) : 0;
        _words.Write(IntervalNs, 0); // no producer reserves against a half-written configuration
        _words.Write(ToleranceNs, interval * Math.Max(0, burst));
        _words.Write(Tat, 0);
        _words.Write(WindowNs, aggregateWindow <= TimeSpan.Zero ? -1 : Math.Max(1, aggregateWindow.Ticks * 100));
        _words.Write(IntervalNs, interval);
    }

    /// <summary>Sbxd: the byte budget and usage, published for producers' messages.</summary>
    public void Publish(long budgetBytes, long usedBytes)
    {
        _words.Write(BudgetBytesWord, budgetBytes);
        _words.Write(UsedBytesWord, usedBytes);
    }

    /// <summary>Sbxd: sets or clears the exhausted flag; returns whether it was set before.</summary>
    public bool SetExhausted(bool exhausted) => _words.Exchange(ExhaustedFlag, exhausted ? 1 : 0) != 0;

    /// <summary>Operations refused since the budget was last exhausted.</summary>
    public long Refused => _words.Read(RefusedCount);

    /// <summary>Sbxd: operations refused since the last call.</summary>
    public long TakeRefused() => _words.Exchange(RefusedCount, 0);

    public void Dispose() => _words.Dispose();
}
