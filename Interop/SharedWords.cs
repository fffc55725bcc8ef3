using System.IO.MemoryMappedFiles;

namespace Hive.Interop;

/// <summary>
/// A small file mapped shared (<c>MAP_SHARED</c>) by several processes and used as an array of
/// 64-bit words with atomic reads and updates. The processes of one sandbox (Sbxd, its SbxFuse and
/// SbxProxy, the Controller) share the event budget through one: a flag read costs a load, a rate
/// reservation one compare-and-swap, and neither a system call.
/// </summary>
/// <remarks>
/// Written by hand because nothing in the BCL exposes atomic operations on mapped memory
/// (<see cref="MemoryMappedViewAccessor"/> reads and writes, but has no compare-and-swap). Every
/// access holds a reference on the view's handle, so a concurrent <see cref="Dispose"/> unmaps only
/// after it (an access after it throws <see cref="ObjectDisposedException"/>, never faults).
/// </remarks>
public sealed unsafe class SharedWords : IDisposable
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly long _offset;

    private SharedWords(MemoryMappedFile map, MemoryMappedViewAccessor view, int count)
    {
        _map = map;
        _view = view;
        _offset = view.PointerOffset;
        Count = count;
    }

    /// <summary>Number of words.</summary>
    public int Count { get; }

    /// <summary>
    /// Maps <paramref name="path"/> (created with mode 0600 and zero-filled if missing or shorter;
    /// several processes may do this at once) as <paramref name="count"/> words.
    /// </summary>
    public static SharedWords OpenOrCreate(string path, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var bytes = (long)count * sizeof(long);
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            Access = FileAccess.ReadWrite,
            Share = FileShare.ReadWrite | FileShare.Delete,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            BufferSize = 0,
        });
        try
        {
            if (stream.Length < bytes)
            {
                stream.SetLength(bytes); // ftruncate: zero-filled; racing creators all set the same length
            }

            var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            try
            {
                return new SharedWords(map, map.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.ReadWrite), count);
            }
            catch
            {
                map.Dispose();
                throw;
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public long Read(int index)
    {
        var word = Acquire(index);
        try
        {
            return Volatile.Read(ref *word);
        }
        finally
        {
            Release();
        }
    }

    public void Write(int index, long value)
    {
        var word = Acquire(index);
        try
        {
            Volatile.Write(ref *word, value);
        }
        finally
        {
            Release();
        }
    }

    /// <summary>Atomically adds <paramref name="value"/>; returns the new value.</summary>
    public long Add(int index, long value)
    {
        var word = Acquire(index);
        try
        {
            return Interlocked.Add(ref *word, value);
        }
        finally
        {
            Release();
        }
    }

    /// <summary>Atomically replaces the word; returns the old value.</summary>
    public long Exchange(int index, long value)
    {
        var word = Acquire(index);
        try
        {
            return Interlocked.Exchange(ref *word, value);
        }
        finally
        {
            Release();
        }
    }

    /// <summary>Sets the word to <paramref name="value"/> if it equals <paramref name="comparand"/>; returns what it was.</summary>
    public long CompareExchange(int index, long value, long comparand)
    {
        var word = Acquire(index);
        try
        {
            return Interlocked.CompareExchange(ref *word, value, comparand);
        }
        finally
        {
            Release();
        }
    }

    private long* Acquire(int index)
    {
        if ((uint)index >= (uint)Count)
        {
            throw new ArgumentOutOfRangeException(nameof(index));
        }

        byte* pointer = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        return (long*)(pointer + _offset) + index;
    }

    private void Release() => _view.SafeMemoryMappedViewHandle.ReleasePointer();

    public void Dispose()
    {
        _view.Dispose();
        _map.Dispose();
    }
}
