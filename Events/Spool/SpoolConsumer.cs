using System.Buffers.Binary;

namespace Hive.Events.Spool;

/// <summary>
/// Sbxd's side of the spools: reads every producer's records in order from a checkpoint
/// (<see cref="Positions"/>), and deletes spool files once the log holding their events is durable.
/// </summary>
public sealed class SpoolConsumer(string dir) : IDisposable
{
    private readonly Dictionary<string, (long Generation, FileStream File)> _open = new(StringComparer.Ordinal);

    /// <summary>Where each source's next unread record starts. Loaded from the log's last checkpoint.</summary>
    public Dictionary<string, ulong> Positions { get; } = new(StringComparer.Ordinal);

    /// <summary>Records skipped as torn (a producer died mid-write, or its disk filled).</summary>
    public long TornRecords { get; private set; }

    /// <summary>
    /// Reads complete records from every source into <paramref name="payloads"/>, at most
    /// <paramref name="maxBytes"/> in all, and advances <see cref="Positions"/> past them.
    /// </summary>
    public int Collect(List<ReadOnlyMemory<byte>> payloads, int maxBytes)
    {
        var total = 0;
        var files = SpoolFiles.List(dir);
        foreach (var (source, generations) in files.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            if (!Positions.TryGetValue(source, out var position))
            {
                position = SpoolFiles.Position(generations[0], 0);
            }

            var (generation, offset) = SpoolFiles.Split(position);
            while (total < maxBytes)
            {
                var current = generations.FindIndex(g => g >= generation);
                if (current < 0)
                {
                    break; // consumed everything this source wrote
                }

                if (generations[current] != generation)
                {
                    (generation, offset) = (generations[current], 0); // a generation vanished (never written): skip ahead
                }

                var newer = current + 1 < generations.Count;
                var (read, torn) = ReadRecords(source, generation, ref offset, payloads, maxBytes - total);
                total += read;
                if (read > 0 && total >= maxBytes)
                {
                    break;
                }

                if (!newer)
                {
                    break; // the producer may still append here
                }

                // The producer moved on, so this generation is final: read what it added before
                // moving, then continue with the next one. A torn tail is skipped.
                var (more, tornAgain) = ReadRecords(source, generation, ref offset, payloads, maxBytes - total);
                total += more;
                if (more > 0 && total >= maxBytes)
                {
                    break;
                }

                if (torn || tornAgain)
                {
                    TornRecords++;
                }

                Close(source);
                (generation, offset) = (generations[current + 1], 0);
            }

            Positions[source] = SpoolFiles.Position(generation, offset);
        }

        return total;
    }

    /// <summary>Deletes every spool file whose records all lie before the (durable) positions.</summary>
    public void Release()
    {
        foreach (var (source, generations) in SpoolFiles.List(dir))
        {
            if (!Positions.TryGetValue(source, out var position))
            {
                continue;
            }

            var (current, _) = SpoolFiles.Split(position);
            foreach (var generation in generations.Where(g => g < current))
            {
                try
                {
                    File.Delete(Path.Combine(dir, SpoolFiles.FileName(source, generation)));
                }
                catch (IOException)
                {
                    // Retried on the next release.
                }
            }
        }
    }

    private (int Bytes, bool Torn) ReadRecords(string source, long generation, ref long offset, List<ReadOnlyMemory<byte>> payloads, int budget)
    {
        FileStream file;
        if (_open.TryGetValue(source, out var open) && open.Generation == generation)
        {
            file = open.File;
        }
        else
        {
            Close(source);
            try
            {
                file = new FileStream(Path.Combine(dir, SpoolFiles.FileName(source, generation)), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
            }
            catch (FileNotFoundException)
            {
                return (0, false);
            }

            _open[source] = (generation, file);
        }

        var available = file.Length - offset;
        if (available < 4)
        {
            return (0, available > 0);
        }

        var chunk = new byte[(int)Math.Min(available, Math.Max(budget, 4096) + SpoolFiles.MaxRecordBytes)];
        var got = RandomAccess.Read(file.SafeFileHandle, chunk, offset);
        var used = 0;
        while (got - used >= 4)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(chunk.AsSpan(used));
            if (length <= 0 || length > SpoolFiles.MaxRecordBytes)
            {
                // Corrupt: nothing after it in this generation can be trusted.
                offset = file.Length;
                return (used, true);
            }

            if (got - used - 4 < length)
            {
                break;
            }

            payloads.Add(new ReadOnlyMemory<byte>(chunk, used + 4, length));
            used += 4 + length;
            if (used >= budget)
            {
                break;
            }
        }

        offset += used;
        return (used, offset < file.Length); // leftover bytes: a record still being written, or torn if the generation is final
    }

    private void Close(string source)
    {
        if (_open.Remove(source, out var open))
        {
            open.File.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (var (_, file) in _open.Values)
        {
            file.Dispose();
        }

        _open.Clear();
    }
}
