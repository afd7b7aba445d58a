using Backup.Storage.Compression;
using Backup.Storage.Crypto;

namespace Backup.Storage.Blobs;

/// <summary>How a chunk's bytes sit inside its encrypted envelope (first plaintext byte, so it is authenticated too).</summary>
public enum BlobEncoding : byte
{
    Raw = 0,
    Zstd = 1,
}

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
    public int Open(ReadOnlySpan<byte> sealedBlob, ChunkId expected, Span<byte> destination)
    {
        var innerLength = BlobCipher.PlaintextLength(sealedBlob.Length);
        if (innerLength < 1) throw new InvalidDataException($"Chunk {expected}: the envelope has no encoding byte.");
        if (_scratch.Length < innerLength) _scratch = GC.AllocateUninitializedArray<byte>(innerLength);
        var inner = _scratch.AsSpan(0, innerLength);
        try
        {
            _cipher.Open(sealedBlob, inner);
        }
        catch (BlobAuthenticationException)
        {
            throw new BlobAuthenticationException($"Chunk {expected} failed authentication: its blob is damaged or was sealed with another key.");
        }

        var body = inner[1..];
        int length;
        switch ((BlobEncoding)inner[0])
        {
            case BlobEncoding.Raw:
                if (body.Length > destination.Length)
                    throw new InvalidDataException($"Chunk {expected} is {body.Length} bytes, more than the {destination.Length} allowed.");
                body.CopyTo(destination);
                length = body.Length;
                break;
            case BlobEncoding.Zstd:
                try
                {
                    length = _compressor.Decompress(body, destination);
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"Chunk {expected}: {e.Message}", e);
                }
                break;
            default:
                throw new InvalidDataException($"Chunk {expected} has unknown encoding {inner[0]}.");
        }

        var actual = _ids.Compute(destination[..length]);
        if (actual != expected) throw new ChunkMismatchException(expected, actual);
        return length;
    }

    /// <summary>
    /// Like <see cref="Open(ReadOnlySpan{byte}, ChunkId, Span{byte})"/>, without a buffer of its own: decrypts in place
    /// (the blob's bytes are overwritten), then returns the chunk, which is either inside <paramref name="sealedBlob"/>
    /// (stored raw) or decompressed into <paramref name="destination"/> (whose length bounds the chunk size accepted).
    /// </summary>
    public ReadOnlySpan<byte> OpenInPlace(Span<byte> sealedBlob, ChunkId expected, Span<byte> destination)
    {
        var innerLength = BlobCipher.PlaintextLength(sealedBlob.Length);
        if (innerLength < 1) throw new InvalidDataException($"Chunk {expected}: the envelope has no encoding byte.");
        var inner = sealedBlob.Slice(BlobCipher.NonceSize, innerLength);
        try
        {
            _cipher.Open(sealedBlob, inner);
        }
        catch (BlobAuthenticationException)
        {
            throw new BlobAuthenticationException($"Chunk {expected} failed authentication: its blob is damaged or was sealed with another key.");
        }
        var body = inner[1..];
        ReadOnlySpan<byte> chunk;
        switch ((BlobEncoding)inner[0])
        {
            case BlobEncoding.Raw:
                if (body.Length > destination.Length)
                    throw new InvalidDataException($"Chunk {expected} is {body.Length} bytes, more than the {destination.Length} allowed.");
                chunk = body;
                break;
            case BlobEncoding.Zstd:
                try
                {
                    chunk = destination[.._compressor.Decompress(body, destination)];
                }
                catch (InvalidDataException e)
                {
                    throw new InvalidDataException($"Chunk {expected}: {e.Message}", e);
                }
                break;
            default:
                throw new InvalidDataException($"Chunk {expected} has unknown encoding {inner[0]}.");
        }
        var actual = _ids.Compute(chunk);
        if (actual != expected) throw new ChunkMismatchException(expected, actual);
        return chunk;
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
