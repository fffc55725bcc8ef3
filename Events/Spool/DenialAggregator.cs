using Google.Protobuf;
using Hive.Protos.V1;

namespace Hive.Events.Spool;

/// <summary>
/// Gathers repeated identical denials of one producer into one event with a count. The first
/// denial of a kind is written at once (and remembered); identical ones within the window after
/// it only count, and go out as one event — <c>count</c> = how many, <c>first_ts_unix_us</c> and
/// <c>ts_unix_us</c> = the first and last of them — before the producer's next event of any other
/// kind, when the window ends, on sync and on shutdown. A denial has no effect, so nothing is lost
/// but the repetition; allowed operations are never gathered. Not thread-safe: the
/// <see cref="SpoolWriter"/>'s lock guards it.
/// </summary>
internal sealed class DenialAggregator
{
    /// <summary>Kinds remembered at once; beyond this the oldest are forgotten (their next denial is written again).</summary>
    private const int MaxKeys = 256;

    private readonly Dictionary<byte[], Entry> _seen = new(KeyComparer.Instance);
    private readonly List<Entry> _pending = [];

    /// <summary>Whether repeats are waiting to be written.</summary>
    public bool HasPending => _pending.Count > 0;

    /// <summary>Repeats gathered so far (never written as events of their own).</summary>
    public long Gathered { get; private set; }

    /// <summary>A decision that refused the operation: <c>deny</c>, <c>deny-ro</c>, …</summary>
    public static bool IsDenial(string decision) => decision.StartsWith("deny", StringComparison.Ordinal);

    /// <summary>
    /// What makes two denials identical: everything but when they happened and how long they took
    /// (kind, decision, target, reason, rule, …).
    /// </summary>
    public static byte[] KeyOf(Event e)
    {
        var key = e.Clone();
        key.TsUnixUs = 0;
        key.Seq = 0;
        switch (key.BodyCase)
        {
            case Event.BodyOneofCase.Fs:
                key.Fs.DurationUs = 0;
                break;
            case Event.BodyOneofCase.Net:
                key.Net.DurationUs = 0;
                break;
            default:
                break;
        }

        return key.ToByteArray();
    }

    /// <summary>Counts <paramref name="e"/> as a repeat of a denial written within the window; false = write it.</summary>
    public bool TryGather(byte[] key, Event e, long nowNs, long windowNs)
    {
        if (!_seen.TryGetValue(key, out var entry) || nowNs - entry.SinceNs >= windowNs)
        {
            return false;
        }

        if (entry.Count == 0)
        {
            entry.FirstTsUs = e.TsUnixUs;
            _pending.Add(entry);
        }

        entry.Count++;
        entry.Last = e;
        Gathered++;
        return true;
    }

    /// <summary>A denial was written: repeats from now on are gathered.</summary>
    public void Remember(byte[] key, long nowNs, long windowNs)
    {
        if (_seen.TryGetValue(key, out var entry))
        {
            entry.SinceNs = nowNs;
            return;
        }

        if (_seen.Count >= MaxKeys)
        {
            // Forget what has expired; if that is not enough, everything without pending repeats.
            foreach (var (k, old) in _seen.Where(kv => kv.Value.Count == 0 && nowNs - kv.Value.SinceNs >= windowNs).ToList())
            {
                _seen.Remove(k);
            }

            if (_seen.Count >= MaxKeys)
            {
                foreach (var k in _seen.Where(kv => kv.Value.Count == 0).Select(kv => kv.Key).ToList())
                {
                    _seen.Remove(k);
                }
            }
        }

        if (_seen.Count < MaxKeys)
        {
            _seen[key] = new Entry { SinceNs = nowNs };
        }
    }

    /// <summary>
    /// Takes every pending aggregate as the event to write (oldest first) and starts a new window
    /// for its kind: a flood that goes on yields one event per window.
    /// </summary>
    public List<Event> TakePending(long nowNs)
    {
        var events = new List<Event>(_pending.Count);
        foreach (var entry in _pending)
        {
            var e = entry.Last!.Clone();
            e.Count = (ulong)entry.Count;
            e.FirstTsUnixUs = entry.FirstTsUs;
            events.Add(e);
            entry.Count = 0;
            entry.Last = null;
            entry.SinceNs = nowNs;
        }

        _pending.Clear();
        events.Sort((a, b) => a.FirstTsUnixUs.CompareTo(b.FirstTsUnixUs));
        return events;
    }

    /// <summary>Forgets kinds whose window ended without repeats (keeps the table small while idle).</summary>
    public void Expire(long nowNs, long windowNs)
    {
        foreach (var k in _seen.Where(kv => kv.Value.Count == 0 && nowNs - kv.Value.SinceNs >= windowNs).Select(kv => kv.Key).ToList())
        {
            _seen.Remove(k);
        }
    }

    private sealed class Entry
    {
        public long SinceNs;
        public long Count;
        public long FirstTsUs;
        public Event? Last;
    }

    private sealed class KeyComparer : IEqualityComparer<byte[]>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(byte[] obj)
        {
            var hash = new HashCode();
            hash.AddBytes(obj);
            return hash.ToHashCode();
        }
    }
}
