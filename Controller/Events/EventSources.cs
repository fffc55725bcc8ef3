using Hive.Events;
using Hive.Events.Log;
using Hive.Protos.V1;

namespace Hive.Controller.Events;

/// <summary>One event ready to send: which sandbox, the decoded event.</summary>
internal readonly record struct SandboxEvent(string Sandbox, Event Event);

/// <summary>Reads one sandbox's log through its feed's watermark, filtered.</summary>
internal sealed class SandboxEventSource(string sandbox, EventFeeds.Feed feed, string dir, ulong after, EventFilter filter) : IDisposable
{
    private readonly EventLogReader _reader = new(dir, after);
    private readonly List<LogEntry> _batch = new(512);
    private readonly Queue<Event> _ready = new();

    public string Sandbox => sandbox;

    public EventFeeds.Feed Feed => feed;

    /// <summary>Seq of the last event taken (or skipped by the filter).</summary>
    public ulong Position { get; private set; } = after;

    /// <summary>The next matching event, if one is readable now.</summary>
    public bool TryPeek(out Event e)
    {
        while (_ready.Count == 0)
        {
            _batch.Clear();
            if (_reader.Read(_batch, _batch.Capacity, feed.Limit) == 0)
            {
                e = null!;
                return false;
            }

            foreach (var entry in _batch)
            {
                var decoded = Event.Parser.ParseFrom(entry.Payload.Span);
                decoded.Seq = entry.Seq;
                if (filter.Matches(decoded))
                {
                    _ready.Enqueue(decoded);
                }
            }

            if (_ready.Count == 0)
            {
                Position = _reader.Position; // everything read was filtered out
            }
        }

        e = _ready.Peek();
        return true;
    }

    public Event Take()
    {
        var e = _ready.Dequeue();
        Position = _ready.Count == 0 ? Math.Max(e.Seq, _reader.Position) : e.Seq;
        return e;
    }

    public void Dispose() => _reader.Dispose();
}
