using System.Globalization;
using System.Text;
using Hive.Events;
using Hive.Protos.V1;

namespace Hive.Controller.Events;

/// <summary>
/// Events of one sandbox, or of every sandbox with a log merged by time (oldest head first). The
/// merged position is a compound cursor <c>a:12,b:40</c> — exact per sandbox, so resuming loses and
/// repeats nothing whatever order the events were sent in.
/// </summary>
internal sealed class MergedEvents : IDisposable
{
    private static readonly TimeSpan Rescan = TimeSpan.FromSeconds(2);
    private readonly List<SandboxEventSource> _sources;
    private readonly Dictionary<string, ulong>? _after;
    private readonly EventFeeds _feeds;
    private readonly EventFilter _filter;
    private long _lastScan;

    public MergedEvents(List<SandboxEventSource> sources, Dictionary<string, ulong>? after, EventFeeds feeds, EventFilter filter)
    {
        _sources = sources;
        _after = after;
        _feeds = feeds;
        _filter = filter;
        if (after is not null)
        {
            AddNewLogs();
        }
    }

    /// <summary>Completes when any source may have more (a commit, or a new sandbox for the merged view).</summary>
    public Task Changed()
    {
        var tasks = _sources.Select(s => s.Feed.Changed).ToList();
        if (_after is not null)
        {
            tasks.Add(Task.Delay(Rescan));
        }

        return tasks.Count == 0 ? Task.Delay(Rescan) : Task.WhenAny(tasks);
    }

    /// <summary>Waits (briefly) until every source's watermark is known, so history reads see what is durable.</summary>
    public async Task ReadyAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.WhenAll(_sources.Select(s => s.Feed.Ready)).WaitAsync(TimeSpan.FromSeconds(3), cancellationToken);
        }
        catch (TimeoutException)
        {
            // Sbxd busy: serve what is known to be durable so far.
        }
    }

    public bool TryTake(out SandboxEvent taken)
    {
        if (_after is not null && Environment.TickCount64 - _lastScan > Rescan.TotalMilliseconds)
        {
            AddNewLogs();
        }

        SandboxEventSource? best = null;
        long bestTs = long.MaxValue;
        foreach (var source in _sources)
        {
            if (source.TryPeek(out var head) && head.TsUnixUs < bestTs)
            {
                (best, bestTs) = (source, head.TsUnixUs);
            }
        }

        if (best is null)
        {
            taken = default;
            return false;
        }

        taken = new SandboxEvent(best.Sandbox, best.Take());
        return true;
    }

    public bool TryPeek() => _sources.Any(s => s.TryPeek(out _));

    public ulong SinglePosition() => _sources.Count > 0 ? _sources[0].Position : 0;

    public string Cursor()
    {
        var text = new StringBuilder();
        foreach (var source in _sources)
        {
            if (source.Position == 0)
            {
                continue;
            }

            if (text.Length > 0)
            {
                text.Append(',');
            }

            text.Append(source.Sandbox).Append(':').Append(source.Position.ToString(CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    public static bool TryParseCursor(string text, Dictionary<string, ulong> into)
    {
        if (text.Length > 64 * 1024)
        {
            return false;
        }

        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = part.LastIndexOf(':');
            if (colon <= 0 || !Sandboxes.Config.SandboxConfigValidator.IsValidName(part[..colon])
                || !ulong.TryParse(part.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            {
                return false;
            }

            into[part[..colon]] = seq;
        }

        return true;
    }

    private void AddNewLogs()
    {
        _lastScan = Environment.TickCount64;
        foreach (var name in _feeds.Logs())
        {
            if (_sources.All(s => s.Sandbox != name))
            {
                _sources.Add(new SandboxEventSource(name, _feeds.Get(name), _feeds.LogDir(name), _after!.TryGetValue(name, out var seq) ? seq : 0, _filter));
            }
        }
    }

    public void Dispose()
    {
        foreach (var source in _sources)
        {
            source.Dispose();
        }
    }
}
