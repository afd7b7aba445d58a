using System.Runtime.InteropServices;

namespace Backup.Agent.Memory;

/// <summary>A block of unmanaged memory from a <see cref="NativeBufferPool"/>; hand it back with <see cref="NativeBufferPool.Return"/>.</summary>
public sealed unsafe class NativeBuffer
{
    private readonly byte* _pointer;

    internal NativeBuffer(byte* pointer, int capacity)
    {
        _pointer = pointer;
        Capacity = capacity;
    }

    public int Capacity { get; }

    internal byte* Pointer => _pointer;

    /// <summary>The first <paramref name="length"/> bytes (at most <see cref="Capacity"/>).</summary>
    public Span<byte> Span(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, Capacity);
        return new Span<byte>(_pointer, length);
    }
}

/// <summary>
/// Chunk-sized buffers outside the managed heap, for the data a job moves (chunks, sealed blobs). Two properties decide
/// a job's peak memory, and neither holds for managed arrays or <see cref="System.Buffers.ArrayPool{T}"/>:
/// <list type="bullet">
/// <item>What the pool keeps for reuse is bounded in bytes, whatever the mix of sizes (an array pool keeps a number of
/// arrays per power-of-two size, so a run with chunks of every size from 512 KiB to 8 MiB ends up holding many of each).
/// A buffer returned beyond that budget, and every buffer when the pool is disposed, goes back to the system at once
/// instead of waiting as garbage for a full collection.</item>
/// <item>A fresh buffer costs memory only for the pages actually written: capacity is a power of two, but a 1.1 MiB chunk
/// in a 2 MiB buffer occupies 1.1 MiB.</item>
/// </list>
/// Thread-safe. After <see cref="Dispose"/> returned buffers are freed at once.
/// </summary>
public sealed unsafe class NativeBufferPool(long keepBytes) : IDisposable
{
    private const int SmallestCapacity = 64 << 10;
    private readonly List<NativeBuffer> _free = []; // ascending capacity
    private long _freeBytes;
    private bool _disposed;

    /// <summary>Capacity of the free buffers kept for reuse, in bytes (at most the budget).</summary>
    public long KeptBytes
    {
        get
        {
            lock (_free) return _freeBytes;
        }
    }

    /// <summary>A buffer of at least <paramref name="length"/> bytes: the smallest kept one that fits, else a new one.</summary>
    public NativeBuffer Rent(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var capacity = length <= SmallestCapacity ? SmallestCapacity : checked((int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)length));
        lock (_free)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            for (var i = 0; i < _free.Count; i++)
            {
                if (_free[i].Capacity < length) continue;
                var found = _free[i];
                _free.RemoveAt(i);
                _freeBytes -= found.Capacity;
                return found;
            }
        }
        return new NativeBuffer((byte*)NativeMemory.Alloc((nuint)capacity), capacity);
    }

    /// <summary>Keeps the buffer for reuse, or frees it (the largest kept ones go first when over the budget).</summary>
    public void Return(NativeBuffer buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        lock (_free)
        {
            if (!_disposed)
            {
                var at = 0;
                while (at < _free.Count && _free[at].Capacity < buffer.Capacity) at++;
                _free.Insert(at, buffer);
                _freeBytes += buffer.Capacity;
                buffer = null!;
                while (_freeBytes > keepBytes)
                {
                    var largest = _free[^1];
                    _free.RemoveAt(_free.Count - 1);
                    _freeBytes -= largest.Capacity;
                    NativeMemory.Free(largest.Pointer);
                }
            }
        }
        if (buffer is not null) NativeMemory.Free(buffer.Pointer);
    }

    public void Dispose()
    {
        lock (_free)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var buffer in _free) NativeMemory.Free(buffer.Pointer);
            _free.Clear();
            _freeBytes = 0;
        }
    }
}

/// <summary>The C allocator's process-wide settings that keep freed memory from lingering.</summary>
public static partial class NativeHeap
{
    private const int MmapThreshold = -3; // glibc M_MMAP_THRESHOLD

    /// <summary>
    /// On glibc, blocks of 128 KiB or more are mapped and unmapped one by one, always: by default glibc raises that
    /// threshold to the size of the largest block freed so far (up to 32 MiB), after which chunk-sized buffers come from
    /// the heap and stay resident after they are freed. Elsewhere (Windows, musl) nothing to do.
    /// </summary>
    public static void ReturnLargeBlocksAtOnce()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = mallopt(MmapThreshold, 128 << 10);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc.
        }
    }

    /// <summary>Gives the C heap's free pages back to the system (glibc), e.g. after a job; a no-op elsewhere.</summary>
    public static void Trim()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = malloc_trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc.
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);
}
