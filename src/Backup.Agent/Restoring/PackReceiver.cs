using System.Security.Cryptography;
using Backup.Agent.Memory;
using Backup.Storage.Crypto;

namespace Backup.Agent.Restoring;

/// <summary>
/// Takes a pack as it downloads (a write-only stream) and hands over each blob a restore needs as soon as its last byte has
/// arrived, so a pack is never written to a scratch file and read back: the bytes between the blobs are only hashed.
/// Every byte goes into the pack's SHA-256, which <see cref="Finish"/> checks against the pack id once the download ends; the
/// blobs handed over before that are safe to use, as each is authenticated and checked against its chunk id on its own.
/// <paramref name="blobs"/> are the wanted blobs in offset order; <paramref name="onBlob"/> gets a blob's position in that list
/// and its sealed bytes (valid only during the call).
/// </summary>
public sealed class PackReceiver(
    string packId, IReadOnlyList<(ChunkId Id, long Offset, int Length)> blobs, NativeBufferPool pool, Action<int, Span<byte>> onBlob) : Stream
{
    private readonly IncrementalHash _sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _position;
    private int _next;
    private NativeBuffer? _blob;
    private int _filled;

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _sha.AppendData(buffer);
        var end = _position + buffer.Length;
        while (_next < blobs.Count && !buffer.IsEmpty)
        {
            var (id, offset, length) = blobs[_next];
            if (_blob is null)
            {
                if (offset < _position)
                    throw new InvalidDataException($"Pack {packId}: the index puts chunk {id} at offset {offset}, inside the blob before it.");
                if (length < 0 || length > Storage.Format.Pack.MaxBlobLength)
                    throw new InvalidDataException($"Chunk {id} in pack {packId} is indexed as {length} bytes, more than any blob.");
                if (offset >= end) break; // it starts in a later write
                var skip = (int)(offset - _position);
                buffer = buffer[skip..];
                _position = offset;
                _blob = pool.Rent(length);
                _filled = 0;
            }
            var take = Math.Min(length - _filled, buffer.Length);
            buffer[..take].CopyTo(_blob.Span(length)[_filled..]);
            _filled += take;
            _position += take;
            buffer = buffer[take..];
            if (_filled < length) break;
            var blob = _blob;
            _blob = null;
            try
            {
                onBlob(_next++, blob.Span(length));
            }
            finally
            {
                pool.Return(blob);
            }
        }
        _position = end;
    }

    /// <summary>After the download: every wanted blob arrived, and the pack hashes to its id.</summary>
    /// <exception cref="InvalidDataException">The pack is shorter than the index says, or its content is not the pack's.</exception>
    public void Finish()
    {
        if (_next < blobs.Count)
            throw new InvalidDataException(
                $"Pack {packId} is shorter than the index says: chunk {blobs[_next].Id} lies past its end ({_position} bytes arrived).");
        var actual = Convert.ToHexStringLower(_sha.GetHashAndReset());
        if (!string.Equals(actual, packId, StringComparison.Ordinal))
            throw new InvalidDataException($"Pack {packId} is corrupt: its content hashes to {actual}.");
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _position;

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_blob is not null) pool.Return(_blob);
            _blob = null;
            _sha.Dispose();
        }
        base.Dispose(disposing);
    }
}
