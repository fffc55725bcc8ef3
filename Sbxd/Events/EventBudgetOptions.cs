using Hive.Events.Spool;
using Hive.Protos.V1;

namespace Hive.Sbxd.Events;

/// <summary>The event budget of one sandbox (docs/API.md, "Event budget").</summary>
internal sealed record EventBudgetOptions
{
    /// <summary>Bytes of this sandbox's life in its log at which new operations are refused; 0 = unlimited.</summary>
    public long BudgetBytes { get; init; } = EventBudget.DefaultBudgetBytes;

    /// <summary>Events per second beyond which producers wait; 0 = unlimited.</summary>
    public double Rate { get; init; } = EventBudget.DefaultRate;

    /// <summary>Events allowed at full speed on top of the rate.</summary>
    public long Burst { get; init; } = EventBudget.DefaultBurst;

    /// <summary>Identical denials within this window become one event; zero = off.</summary>
    public TimeSpan AggregateWindow { get; init; } = EventBudget.DefaultAggregateWindow;

    /// <summary>From the spec; fields it does not set (written before they existed) keep the defaults.</summary>
    public static EventBudgetOptions From(SandboxSpec spec) => new()
    {
        BudgetBytes = spec.HasEventsBudgetBytes ? (long)Math.Min(spec.EventsBudgetBytes, long.MaxValue) : EventBudget.DefaultBudgetBytes,
        Rate = spec.HasEventsRate ? Math.Max(0, spec.EventsRate) : EventBudget.DefaultRate,
        Burst = spec.HasEventsBurst ? (long)Math.Min(spec.EventsBurst, int.MaxValue) : EventBudget.DefaultBurst,
        AggregateWindow = spec.HasEventsAggregateMs ? TimeSpan.FromMilliseconds(spec.EventsAggregateMs) : EventBudget.DefaultAggregateWindow,
    };
}
