using Microsoft.Win32.SafeHandles;

namespace Hive.Agent.Exec;

/// <summary>
/// Drains one output pipe: keeps the first <c>limit</c> bytes, counts the rest and keeps reading
/// (a child blocked on a full pipe would never exit), stops on EOF or when told to.
/// </summary>
internal sealed class OutputCollector
{
    private readonly MemoryStream _kept = new();
    private readonly long _limit;
    private long _total;

    public OutputCollector(long limit) => _limit = limit;

    public long Total => Interlocked.Read(ref _total);

    public bool Truncated => Total > _limit;

    /// <summary>Reads until EOF on a dedicated thread (pipes have no true async I/O in .NET on Unix).</summary>
    public Task RunAsync(SafeFileHandle pipe) => Task.Factory.StartNew(
        () =>
        {
            var buffer = new byte[64 * 1024];
            try
            {
                using var stream = new FileStream(pipe, FileAccess.Read, bufferSize: 0);
                while (true)
                {
                    var n = stream.Read(buffer, 0, buffer.Length);
                    if (n <= 0)
                    {
                        return;
                    }

                    lock (_kept)
                    {
                        var room = (int)Math.Max(0, Math.Min(n, _limit - _kept.Length));
                        _kept.Write(buffer, 0, room);
                    }

                    Interlocked.Add(ref _total, n);
                }
            }
            catch (IOException)
            {
                // The read end was closed under us (drain deadline): stop.
            }
            catch (ObjectDisposedException)
            {
            }
        },
        CancellationToken.None,
        TaskCreationOptions.LongRunning,
        TaskScheduler.Default);

    public byte[] Result(string streamName)
    {
        lock (_kept)
        {
            if (!Truncated)
            {
                return _kept.ToArray();
            }

            var marker = System.Text.Encoding.UTF8.GetBytes($"\n[hive: {streamName} truncated: {Total} bytes produced, first {_limit} kept]\n");
            var result = new byte[_kept.Length + marker.Length];
            _kept.GetBuffer().AsSpan(0, (int)_kept.Length).CopyTo(result);
            marker.CopyTo(result.AsSpan((int)_kept.Length));
            return result;
        }
    }
}
