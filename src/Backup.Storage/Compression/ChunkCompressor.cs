using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Backup.Storage.Compression;

/// <summary>
/// zstd (ZstdSharp.Port) for chunks, used only when it pays: <see cref="TryCompress"/> gives up when the frame
/// would not be smaller than the input, so already-compressed or encrypted data costs one failed attempt and is
/// stored as it is. Not thread-safe (it owns zstd contexts); give each worker its own.
/// </summary>
public sealed class ChunkCompressor : IDisposable
{
    public const int DefaultLevel = 3;

    private readonly Compressor _compressor;
    private readonly Decompressor _decompressor = new();

    public ChunkCompressor(int level = DefaultLevel)
    {
        if (level < Compressor.MinCompressionLevel || level > Compressor.MaxCompressionLevel)
            throw new ArgumentOutOfRangeException(nameof(level), level, $"zstd levels run from {Compressor.MinCompressionLevel} to {Compressor.MaxCompressionLevel}.");
        Level = level;
        _compressor = new Compressor(level);
        // The frame records the content size, so a reader can size its buffer and refuse absurd claims.
        _compressor.SetParameter(ZSTD_cParameter.ZSTD_c_contentSizeFlag, 1);
        _compressor.SetParameter(ZSTD_cParameter.ZSTD_c_checksumFlag, 0);
    }

    public int Level { get; }

    /// <summary>
    /// Compresses <paramref name="source"/> into <paramref name="destination"/> if the frame comes out strictly
    /// smaller than the source; otherwise returns false and the destination's contents are undefined.
    /// </summary>
    public bool TryCompress(ReadOnlySpan<byte> source, Span<byte> destination, out int written)
    {
        written = 0;
        var room = Math.Min(destination.Length, source.Length - 1);
        if (room <= 0 || LooksIncompressible(source)) return false;
        return _compressor.TryWrap(source, destination[..room], out written);
    }

    private const int SampleSize = 4096;

    /// <summary>
    /// True when three 4 KiB samples (start, middle, end) all look like random bytes (Shannon entropy above 7.9
    /// bits per byte): random or already-compressed data then skips a zstd attempt that would fail anyway. A chunk
    /// whose samples miss a compressible stretch is stored raw: a little space for a lot of time, never wrong bytes.
    /// </summary>
    public static bool LooksIncompressible(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4 * SampleSize) return false;
        return Random(data[..SampleSize]) && Random(data.Slice(data.Length / 2 - SampleSize / 2, SampleSize)) && Random(data[^SampleSize..]);

        static bool Random(ReadOnlySpan<byte> sample)
        {
            Span<int> counts = stackalloc int[256];
            foreach (var b in sample) counts[b]++;
            double entropy = 0;
            foreach (var c in counts)
            {
                if (c == 0) continue;
                var p = (double)c / sample.Length;
                entropy -= p * Math.Log2(p);
            }
            return entropy > 7.9;
        }
    }

    /// <summary>The plaintext length a frame claims (its header records it); <see cref="InvalidDataException"/> when the frame is corrupt.</summary>
    public static ulong ClaimedLength(ReadOnlySpan<byte> frame)
    {
        try
        {
            return Decompressor.GetDecompressedSize(frame);
        }
        catch (ZstdException e)
        {
            throw new InvalidDataException($"The zstd frame is corrupt: {e.Message}", e);
        }
    }

    /// <summary>
    /// Decompresses one frame into <paramref name="destination"/>, refusing a frame that claims or produces more
    /// than <paramref name="destination"/> holds. Returns the decompressed length.
    /// </summary>
    /// <exception cref="InvalidDataException">The frame is corrupt or larger than allowed.</exception>
    public int Decompress(ReadOnlySpan<byte> frame, Span<byte> destination)
    {
        ulong claimed;
        try
        {
            claimed = Decompressor.GetDecompressedSize(frame);
        }
        catch (ZstdException e)
        {
            throw new InvalidDataException($"The zstd frame is corrupt: {e.Message}", e);
        }
        if (claimed > (ulong)destination.Length)
            throw new InvalidDataException($"The zstd frame claims {claimed} bytes, more than the {destination.Length} allowed.");
        try
        {
            return _decompressor.TryUnwrap(frame, destination, out var written)
                ? written
                : throw new InvalidDataException($"The zstd frame decompresses to more than the {destination.Length} bytes allowed.");
        }
        catch (ZstdException e)
        {
            throw new InvalidDataException($"The zstd frame is corrupt: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        _compressor.Dispose();
        _decompressor.Dispose();
    }
}
