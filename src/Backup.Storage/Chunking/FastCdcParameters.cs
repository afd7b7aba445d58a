using System.Numerics;

namespace Backup.Storage.Chunking;

/// <summary>
/// Chunk size bounds for <see cref="FastCdc"/>. <see cref="AverageSize"/> must be a power of two because the
/// cut-point masks are derived from its bit count; <see cref="MinSize"/> &lt; average &lt; <see cref="MaxSize"/>.
/// The defaults (512 KiB / 1 MiB / 8 MiB) are part of the repository format: changing them changes every
/// chunk boundary and so defeats dedup against data already stored.
/// </summary>
public sealed record FastCdcParameters
{
    public const int DefaultMinSize = 512 * 1024;
    public const int DefaultAverageSize = 1024 * 1024;
    public const int DefaultMaxSize = 8 * 1024 * 1024;

    /// <summary>The gear hash forgets a byte after 64 shifts, so a smaller minimum would cut inside its warm-up.</summary>
    public const int SmallestMinSize = 64;

    /// <summary>Chunks are held whole in memory and addressed with int offsets; 256 MiB keeps buffers sane.</summary>
    public const int LargestMaxSize = 256 * 1024 * 1024;

    public static FastCdcParameters Default { get; } = new(DefaultMinSize, DefaultAverageSize, DefaultMaxSize);

    public FastCdcParameters(int minSize, int averageSize, int maxSize)
    {
        if (minSize < SmallestMinSize)
            throw new ArgumentOutOfRangeException(nameof(minSize), minSize, $"The minimum chunk size must be at least {SmallestMinSize} bytes.");
        if (!BitOperations.IsPow2(averageSize))
            throw new ArgumentOutOfRangeException(nameof(averageSize), averageSize, "The average chunk size must be a power of two.");
        if (averageSize <= minSize)
            throw new ArgumentOutOfRangeException(nameof(averageSize), averageSize, "The average chunk size must be greater than the minimum.");
        if (maxSize <= averageSize)
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "The maximum chunk size must be greater than the average.");
        if (maxSize > LargestMaxSize)
            throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, $"The maximum chunk size must be at most {LargestMaxSize} bytes.");

        MinSize = minSize;
        AverageSize = averageSize;
        MaxSize = maxSize;

        // Normalised chunking, level 2 (FastCDC paper §3.3): below the average size a cut needs two more zero
        // bits than the average implies (harder), above it two fewer (easier), which pulls chunk sizes towards
        // the average. The mask bits are the topmost of the 64-bit gear hash: after the left shifts, bit k
        // depends on the last k+1 bytes, so the top bits see the whole 64-byte window.
        var bits = BitOperations.Log2((uint)averageSize);
        MaskSmall = TopBits(bits + 2);
        MaskLarge = TopBits(Math.Max(bits - 2, 1));
    }

    public int MinSize { get; }
    public int AverageSize { get; }
    public int MaxSize { get; }

    /// <summary>Mask tested before <see cref="AverageSize"/> (more bits: cuts are rarer).</summary>
    public ulong MaskSmall { get; }

    /// <summary>Mask tested from <see cref="AverageSize"/> on (fewer bits: cuts are likelier).</summary>
    public ulong MaskLarge { get; }

    private static ulong TopBits(int count) => ulong.MaxValue << (64 - count);
}
