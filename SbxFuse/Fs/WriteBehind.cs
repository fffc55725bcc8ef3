using System.Collections.Concurrent;
using Hive.Interop;

namespace Hive.SbxFuse.Fs;

/// <summary>
/// Starts what a handle has written toward the disk once a few MiB have gathered, from one
/// background thread. Every FUSE write costs SbxFuse a round trip and two copies; without this
/// the disk idles while the agent writes a large file, and all of it is written out afterwards
/// (at fsync, or when the kernel's dirty thresholds are reached). With it the two overlap.
/// The request path only widens the handle's pending range (no system call); the thread issues
/// <c>sync_file_range(SYNC_FILE_RANGE_WRITE)</c>, which queues those pages for writeback and
/// does not wait for them. Nothing about durability changes: an acknowledged write is in the
/// backing file either way, and only fsync waits for the disk. Files smaller than
/// <see cref="Batch"/> are left to the kernel entirely.
/// </summary>
internal sealed class WriteBehind
{
    /// <summary>Bytes a handle writes before they are sent on.</summary>
    public const long Batch = 4L << 20;

    // Bounded: when the disk cannot keep up, handles wait their turn here rather than pile up;
    // one that finds the queue full just leaves its pages to the kernel.
    private readonly BlockingCollection<OpenFile> _queue = new(new ConcurrentQueue<OpenFile>(), 1024);

    public WriteBehind()
    {
        new Thread(Run) { IsBackground = true, Name = "write-behind" }.Start();
    }

    /// <summary>Called after a successful write of <paramref name="length"/> bytes at <paramref name="offset"/>.</summary>
    public void Wrote(OpenFile file, long offset, long length)
    {
        lock (file)
        {
            if (file.PendingEnd == 0)
            {
                (file.PendingStart, file.PendingEnd) = (offset, offset + length);
            }
            else
            {
                (file.PendingStart, file.PendingEnd) = (Math.Min(file.PendingStart, offset), Math.Max(file.PendingEnd, offset + length));
            }

            if (file.Queued || file.PendingEnd - file.PendingStart < Batch)
            {
                return;
            }

            file.Queued = true;
        }

        if (!_queue.TryAdd(file))
        {
            lock (file)
            {
                file.Queued = false;
            }
        }
    }

    /// <summary>Before the handle's descriptor is closed: returns once no call of ours is using it.</summary>
    public static void Closing(OpenFile file)
    {
        lock (file)
        {
            file.Closed = true;
            while (file.Sending)
            {
                Monitor.Wait(file);
            }
        }
    }

    private void Run()
    {
        foreach (var file in _queue.GetConsumingEnumerable())
        {
            long start, end;
            lock (file)
            {
                (start, end) = (file.PendingStart, file.PendingEnd);
                (file.PendingStart, file.PendingEnd, file.Queued) = (0, 0, false);
                if (file.Closed)
                {
                    continue;
                }

                file.Sending = true;
            }

            try
            {
                Libc.sync_file_range(file.Fd, start, end - start, Libc.SYNC_FILE_RANGE_WRITE); // advisory: an error changes nothing
            }
            finally
            {
                lock (file)
                {
                    file.Sending = false;
                    Monitor.PulseAll(file);
                }
            }
        }
    }
}
