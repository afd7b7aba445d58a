using Backup.Storage.Compression;
using Backup.Storage.Crypto;

namespace Backup.Storage.Blobs;

/// <summary>How a chunk's bytes sit inside its encrypted envelope (first plaintext byte, so it is authenticated too).</summary>
public enum BlobEncoding : byte
{
    Raw = 0,
    Zstd = 1,
}

/// <summary>A buffer of at least <paramref name="length"/> bytes for a blob's plaintext, valid until the caller is done with the blob.</summary>
public delegate Span<byte> PlainDestination(int length);

/// <summary>Result of sealing one chunk.</summary>
public readonly record struct SealedBlob(int Length, BlobEncoding Encoding);

/// <summary>
/// A stored chunk (docs/format.md "Blob envelope"): <c>nonce(12) || AES-256-GCM(encoding(1) || body) || tag(16)</c>,
/// where body is the zstd frame when that is smaller than the chunk and the chunk itself otherwise. Opening checks
/// the tag, decodes, and checks that the plaintext's keyed id is the id it was asked for, so no damaged, swapped or
/// foreign blob ever comes back as chunk data. Not thread-safe (it owns a cipher, zstd contexts and a scratch
/// buffer); give each pipeline worker its own.
/// </summary>
public sealed class BlobEnvelope : IDisposable
{
    /// <summary>Bytes a sealed blob adds at most to its chunk: nonce, encoding byte, tag.</summary>
    public const int MaxOverhead = BlobCipher.NonceSize + 1 + BlobCipher.TagSize;

    private readonly BlobCipher _cipher;
    private readonly ChunkIdHasher _ids;
    private readonly ChunkCompressor _compressor;
    private byte[] _scratch = [];

    public BlobEnvelope(MasterKeys keys, int compressionLevel = ChunkCompressor.DefaultLevel)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _compressor = new ChunkCompressor(compressionLevel);
        _cipher = keys.CreateCipher();
        _ids = keys.CreateChunkIdHasher();
    }

    /// <summary>Destination size that always suffices for <see cref="Seal"/> (compression is only kept when smaller).</summary>
    public static int MaxSealedLength(int plaintextLength) => checked(plaintextLength + MaxOverhead);

    public ChunkId ComputeId(ReadOnlySpan<byte> plaintext) => _ids.Compute(plaintext);

    /// <summary>Compresses if that pays, then encrypts, straight into <paramref name="destination"/> (no other buffer).</summary>
    public SealedBlob Seal(ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        var needed = MaxSealedLength(plaintext.Length);
        if (destination.Length < needed) throw new ArgumentException($"The destination needs {needed} bytes.", nameof(destination));

        var bodyStart = BlobCipher.NonceSize + 1;
        BlobEncoding encoding;
        int bodyLength;
        if (_compressor.TryCompress(plaintext, destination.Slice(bodyStart, plaintext.Length), out var compressed))
        {
            encoding = BlobEncoding.Zstd;
            bodyLength = compressed;
        }
        else
        {
            encoding = BlobEncoding.Raw;
            plaintext.CopyTo(destination[bodyStart..]);
            bodyLength = plaintext.Length;
        }
        destination[BlobCipher.NonceSize] = (byte)encoding;
        var length = _cipher.SealInPlace(destination, 1 + bodyLength);
        return new SealedBlob(length, encoding);
    }

    public byte[] Seal(ReadOnlySpan<byte> plaintext)
    {
        var buffer = new byte[MaxSealedLength(plaintext.Length)];
        var sealedBlob = Seal(plaintext, buffer);
        return buffer.AsSpan(0, sealedBlob.Length).ToArray();
    }

    /// <summary>
    /// Opens the blob stored as chunk <paramref name="expected"/> into <paramref name="destination"/> (which bounds the
    /// chunk size accepted) and returns the chunk's length.
    /// </summary>
    /// <exception cref="BlobAuthenticationException">The blob was altered, truncated or sealed with another key.</exception>
    /// <exception cref="ChunkMismatchException">The blob is authentic but holds another chunk than <paramref name="expected"/>.</exception>
    /// <exception cref="InvalidDataException">The envelope's content is malformed (unknown encoding, bad zstd frame, too large).</exception>
    public int Open(ReadOnlySpan<byte> sealedBlob, ChunkId expected, byte[] destination)
    {
        var length = OpenBlob(sealedBlob, destination, $"Chunk {expected}");
        Verify(destination.AsSpan(0, length), expected);
        return length;
    }

    /// <summary>
    /// Opens a blob (one chunk, or a group of small chunks back to back) into <paramref name="destination"/> (which bounds the
    /// size accepted) and returns its plaintext length, without checking any chunk id: the caller checks each chunk it takes
    /// out with <see cref="Verify"/>. <paramref name="what"/> names the blob in errors. The blob itself is left as it was.
    /// </summary>
    /// <exception cref="BlobAuthenticationException">The blob was altered, truncated or sealed with another key.</exception>
    /// <exception cref="InvalidDataException">The envelope's content is malformed (unknown encoding, bad zstd frame, too large).</exception>
    public int OpenBlob(ReadOnlySpan<byte> sealedBlob, byte[] destination, string what)
    {
        if (_scratch.Length < sealedBlob.Length) _scratch = GC.AllocateUninitializedArray<byte>(sealedBlob.Length);
        var copy = _scratch.AsSpan(0, sealedBlob.Length);
        sealedBlob.CopyTo(copy);
        var plain = OpenBlobInPlace(copy, length => destination.AsSpan(0, length), destination.Length, what);
        plain.CopyTo(destination); // a raw blob's plaintext is in the scratch copy; a compressed one's already in place
        return plain.Length;
    }

    /// <summary>
    /// Opens a blob without a buffer of its own: decrypts it in place (its bytes are overwritten) and returns the plaintext,
    /// inside <paramref name="sealedBlob"/> when stored raw; when compressed, asks <paramref name="destination"/> for a buffer
    /// of the length the frame claims (at most <paramref name="maxLength"/>) and decompresses into it. No chunk id is checked
    /// (see <see cref="Verify"/>).
    /// </summary>
    public ReadOnlySpan<byte> OpenBlobInPlace(Span<byte> sealedBlob, PlainDestination destination, int maxLength, string what)
    {
        var innerLength = BlobCipher.PlaintextLength(sealedBlob.Length);
        if (innerLength < 1) throw new InvalidDataException($"{what}: the envelope has no encoding byte.");
        var inner = sealedBlob.Slice(BlobCipher.NonceSize, innerLength);
        try
        {
            _cipher.Open(sealedBlob, inner);
        }
        catch (BlobAuthenticationException)
        {
            throw new BlobAuthenticationException($"{what} failed authentication: its blob is damaged or was sealed with another key.");
        }
        var body = inner[1..];
        switch ((BlobEncoding)inner[0])
        {
            case BlobEncoding.Raw:
                if (body.Length > maxLength) throw new InvalidDataException($"{what} is {body.Length} bytes, more than the {maxLength} allowed.");
                return body;
            case BlobEncoding.Zstd:
                try
                {
                    var claimed = ChunkCompressor.ClaimedLength(body);
                    if (claimed > (ulong)maxLength)
                        throw new InvalidDataException($"The zstd frame claims {claimed} bytes, more than the {maxLength} allowed.");
                    var plain = destination((int)claimed);
                    return plain[.._compressor.Decompress(body, plain)];
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"{what}: {e.Message}", e);
                }
            default:
                throw new InvalidDataException($"{what} has unknown encoding {inner[0]}.");
        }
    }

    /// <summary>Checks that <paramref name="chunk"/>'s keyed id is <paramref name="expected"/>.</summary>
    /// <exception cref="ChunkMismatchException">It is another chunk.</exception>
    public void Verify(ReadOnlySpan<byte> chunk, ChunkId expected)
    {
        var actual = _ids.Compute(chunk);
        if (actual != expected) throw new ChunkMismatchException(expected, actual);
    }

    public byte[] Open(ReadOnlySpan<byte> sealedBlob, ChunkId expected, int maxChunkLength)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(maxChunkLength);
        var length = Open(sealedBlob, expected, buffer);
        return buffer.AsSpan(0, length).ToArray();
    }

    public void Dispose()
    {
        _cipher.Dispose();
        _compressor.Dispose();
    }
}
