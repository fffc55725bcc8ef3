namespace Hive.Agent.Exec;

/// <summary>
/// Collects one output stream: keeps the first <c>limit</c> bytes, counts the rest (the pipe keeps
/// being drained, or a chatty child would block forever), completes at EOF.
/// </summary>
internal sealed class OutputCollector(long limit)
{
    private readonly MemoryStream _kept = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _total;

    public long Total => Interlocked.Read(ref _total);

    public bool Truncated => Total > limit;

    public Task Ended => _ended.Task;

    public void Append(ReadOnlySpan<byte> data)
    {
        lock (_kept)
        {
            var room = (int)Math.Max(0, Math.Min(data.Length, limit - _kept.Length));
            _kept.Write(data[..room]);
        }

        Interlocked.Add(ref _total, data.Length);
    }

    public void End() => _ended.TrySetResult();

    public byte[] Result(string streamName)
    {
        lock (_kept)
        {
            if (!Truncated)
            {
                return _kept.ToArray();
            }

            var marker = System.Text.Encoding.UTF8.GetBytes($"\n[hive: {streamName} truncated: {Total} bytes produced, first {limit} kept]\n");
            var result = new byte[_kept.Length + marker.Length];
            _kept.GetBuffer().AsSpan(0, (int)_kept.Length).CopyTo(result);
            marker.CopyTo(result.AsSpan((int)_kept.Length));
            return result;
        }
    }
}
