using System.Buffers.Binary;
using System.Security.Cryptography;
using Backup.Storage.Blobs;
using Backup.Storage.Chunking;
using Backup.Storage.Crypto;

namespace Backup.Storage.Format;

/// <summary>
/// Where one sealed chunk lies in a pack: its id, the blob's offset and length, the chunk's plaintext length and where the
/// chunk starts in its blob's plaintext (0 unless the blob is a group of small chunks, version 3).
/// </summary>
public readonly record struct PackEntry(ChunkId Id, long Offset, int Length, int PlainLength, int PlainOffset = 0);

/// <summary>
/// A pack (docs/format.md): <c>"BKPACK3\n"</c>, the sealed blobs back to back, then a trailer of one 44-byte record per
/// chunk (chunk id, sealed length of its blob, plaintext length, offset in its blob's plaintext; blob offsets follow from
/// the order), the record count and <c>"BKPKEND3"</c>. A blob holds one chunk, or a group of small chunks back to back
/// (compressed together): a group's chunks have consecutive records, the first at plaintext offset 0, each next one where
/// the one before ends. Version 2 packs (<c>"BKPACK2\n"</c>, 40-byte records without the plaintext offset, one chunk per
/// blob) are still read. Packs describe themselves, so an index can be rebuilt from the packs alone. The pack's id is
/// the SHA-256 of all its bytes.
/// </summary>
public static class Pack
{
    public static ReadOnlySpan<byte> HeadMagic => "BKPACK3\n"u8;
    public static ReadOnlySpan<byte> EndMagic => "BKPKEND3"u8;
    public static ReadOnlySpan<byte> HeadMagicV2 => "BKPACK2\n"u8;
    public static ReadOnlySpan<byte> EndMagicV2 => "BKPKEND2"u8;
    public const int MagicSize = 8;
    public const int TrailerRecordSize = ChunkId.Size + 4 + 4 + 4;
    public const int TrailerRecordSizeV2 = ChunkId.Size + 4 + 4;
    public const int MinBlobLength = BlobEnvelope.MaxOverhead;

    /// <summary>The largest plaintext a blob may hold, one chunk or a group: FastCDC's maximum.</summary>
    public static int MaxPlainLength => FastCdcParameters.Default.MaxSize;

    public static int MaxBlobLength => BlobEnvelope.MaxSealedLength(MaxPlainLength);

    /// <summary>Bytes of a pack with no blob.</summary>
    public const int EmptyLength = MagicSize + 4 + MagicSize;

    /// <summary>
    /// Reads and checks the trailer of a whole pack in <paramref name="pack"/> (seekable, positioned anywhere).
    /// </summary>
    /// <exception cref="InvalidDataException">The pack is truncated or its structure is inconsistent; the message says how.</exception>
    public static IReadOnlyList<PackEntry> ReadIndex(Stream pack)
    {
        var length = pack.Length;
        if (length < EmptyLength) throw new InvalidDataException($"The pack is {length} bytes, shorter than any pack ({EmptyLength}).");
        Span<byte> head = stackalloc byte[MagicSize];
        pack.Position = 0;
        pack.ReadExactly(head);
        var v2 = head.SequenceEqual(HeadMagicV2);
        if (!v2 && !head.SequenceEqual(HeadMagic)) throw new InvalidDataException("The pack does not start with a version 2 or 3 pack header.");
        Span<byte> tail = stackalloc byte[4 + MagicSize];
        pack.Position = length - tail.Length;
        pack.ReadExactly(tail);
        if (!tail[4..].SequenceEqual(v2 ? EndMagicV2 : EndMagic)) throw new InvalidDataException("The pack does not end with the pack trailer mark (truncated?).");
        var count = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        var recordSize = v2 ? TrailerRecordSizeV2 : TrailerRecordSize;
        var trailerLength = (long)count * recordSize;
        if (trailerLength > length - EmptyLength) throw new InvalidDataException($"The pack claims {count} chunks, more than its {length} bytes can hold.");

        var trailer = new byte[trailerLength];
        pack.Position = length - tail.Length - trailerLength;
        pack.ReadExactly(trailer);
        var entries = new PackEntry[count];
        long offset = MagicSize;
        var dataEnd = length - tail.Length - trailerLength;
        for (var i = 0; i < count; i++)
        {
            var record = trailer.AsSpan(i * recordSize, recordSize);
            var id = new ChunkId(record[..ChunkId.Size]);
            var blob = BinaryPrimitives.ReadUInt32LittleEndian(record[ChunkId.Size..]);
            var plain = BinaryPrimitives.ReadUInt32LittleEndian(record[(ChunkId.Size + 4)..]);
            var plainOffset = v2 ? 0 : BinaryPrimitives.ReadUInt32LittleEndian(record[(ChunkId.Size + 8)..]);
            if (blob < MinBlobLength || blob > MaxBlobLength)
                throw new InvalidDataException($"Record {i} of the pack (chunk {id}) has an impossible blob length {blob}.");
            if (plain > MaxPlainLength || plainOffset > MaxPlainLength - plain)
                throw new InvalidDataException($"Record {i} of the pack (chunk {id}) claims plaintext bytes {plainOffset}..{(long)plainOffset + plain}, past what a blob may hold.");
            if (plainOffset > 0)
            {
                // The next chunk of the group the record before began: same blob, starting where that chunk ends.
                var before = i > 0 ? entries[i - 1] : default;
                if (i == 0 || before.Length != blob || (long)before.PlainOffset + before.PlainLength != plainOffset)
                    throw new InvalidDataException($"Record {i} of the pack (chunk {id}) continues a group of chunks at plaintext offset {plainOffset}, but does not follow on from the record before it.");
                entries[i] = new PackEntry(id, before.Offset, (int)blob, (int)plain, (int)plainOffset);
                continue;
            }
            entries[i] = new PackEntry(id, offset, (int)blob, (int)plain);
            offset += blob;
            if (offset > dataEnd) throw new InvalidDataException($"Record {i} of the pack (chunk {id}) has its blob run past the pack's data.");
        }
        if (offset != dataEnd) throw new InvalidDataException($"The pack's blobs end at {offset}, but its trailer starts at {dataEnd}.");
        return entries;
    }

    public static IReadOnlyList<PackEntry> ReadIndex(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
        return ReadIndex(file);
    }
}

/// <summary>
/// Writes one pack to a file: blobs as they come, the trailer on <see cref="FinishAsync"/>, hashing as it goes so
/// the pack id costs no second read.
/// </summary>
public sealed class PackBuilder : IAsyncDisposable
{
    private readonly FileStream _file;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly List<PackEntry> _entries = [];
    private bool _finished;

    public PackBuilder(string path)
    {
        Path = path;
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        Append(Pack.HeadMagic);
    }

    public string Path { get; }

    /// <summary>Bytes written so far (header and blobs).</summary>
    public long Length { get; private set; }

    public int Count => _entries.Count;

    public IReadOnlyList<PackEntry> Entries => _entries;

    public void Add(ChunkId id, ReadOnlySpan<byte> sealedBlob, int plainLength)
    {
        CheckBlob(sealedBlob);
        ArgumentOutOfRangeException.ThrowIfNegative(plainLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(plainLength, Pack.MaxPlainLength);
        _entries.Add(new PackEntry(id, Length, sealedBlob.Length, plainLength));
        Append(sealedBlob);
    }

    /// <summary>
    /// Adds a blob holding a group of small chunks back to back (<paramref name="chunks"/> in plaintext order, the first at
    /// offset 0): one record per chunk, all pointing at the blob.
    /// </summary>
    public void Add(IReadOnlyList<(ChunkId Id, int PlainOffset, int PlainLength)> chunks, ReadOnlySpan<byte> sealedBlob)
    {
        CheckBlob(sealedBlob);
        if (chunks.Count == 0) throw new ArgumentException("A blob holds at least one chunk.", nameof(chunks));
        var next = 0L;
        foreach (var (_, plainOffset, plainLength) in chunks)
        {
            if (plainOffset != next || plainLength <= 0 || next + plainLength > Pack.MaxPlainLength)
                throw new ArgumentException("A group's chunks follow each other from plaintext offset 0, within a blob's limit.", nameof(chunks));
            next += plainLength;
        }
        foreach (var (id, plainOffset, plainLength) in chunks) _entries.Add(new PackEntry(id, Length, sealedBlob.Length, plainLength, plainOffset));
        Append(sealedBlob);
    }

    private void CheckBlob(ReadOnlySpan<byte> sealedBlob)
    {
        if (_finished) throw new InvalidOperationException("The pack is finished.");
        if (sealedBlob.Length < Pack.MinBlobLength || sealedBlob.Length > Pack.MaxBlobLength)
            throw new ArgumentException($"A sealed blob of {sealedBlob.Length} bytes cannot be packed.", nameof(sealedBlob));
    }

    /// <summary>Writes the trailer, flushes the file and returns the pack's id (hex SHA-256) and length.</summary>
    public async Task<(string PackId, long Bytes)> FinishAsync(CancellationToken ct)
    {
        if (_finished) throw new InvalidOperationException("The pack is finished.");
        _finished = true;
        var trailer = new byte[_entries.Count * Pack.TrailerRecordSize + 4 + Pack.MagicSize];
        for (var i = 0; i < _entries.Count; i++)
        {
            var record = trailer.AsSpan(i * Pack.TrailerRecordSize, Pack.TrailerRecordSize);
            _entries[i].Id.WriteTo(record);
            BinaryPrimitives.WriteUInt32LittleEndian(record[ChunkId.Size..], (uint)_entries[i].Length);
            BinaryPrimitives.WriteUInt32LittleEndian(record[(ChunkId.Size + 4)..], (uint)_entries[i].PlainLength);
            BinaryPrimitives.WriteUInt32LittleEndian(record[(ChunkId.Size + 8)..], (uint)_entries[i].PlainOffset);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(trailer.AsSpan(_entries.Count * Pack.TrailerRecordSize), (uint)_entries.Count);
        Pack.EndMagic.CopyTo(trailer.AsSpan(trailer.Length - Pack.MagicSize));
        Append(trailer);
        await _file.FlushAsync(ct);
        await _file.DisposeAsync();
        return (Convert.ToHexStringLower(_hash.GetHashAndReset()), Length);
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        _file.Write(bytes);
        _hash.AppendData(bytes);
        Length += bytes.Length;
    }

    public async ValueTask DisposeAsync()
    {
        await _file.DisposeAsync();
        _hash.Dispose();
    }
}

/// <summary>
/// Where the server's index says a chunk is stored (the wire form for restores and checks): its blob's offset and length in
/// the pack, its plaintext length and its offset in the blob's plaintext (0 unless the blob is a group).
/// </summary>
public sealed record ChunkLocation(string ChunkId, string PackId, long Offset, int Length, int PlainLength, int PlainOffset = 0)
{
    /// <summary>The location a pack's own trailer gives for one of its chunks.</summary>
    public static ChunkLocation Of(string packId, PackEntry entry) =>
        new(entry.Id.ToString(), packId, entry.Offset, entry.Length, entry.PlainLength, entry.PlainOffset);
}

/// <summary>Keyless verification of a stored pack: its bytes against its id, its structure, and the chunks an index expects in it.</summary>
public static class PackCheck
{
    /// <summary>Null when the pack is sound; otherwise what is wrong, in words. <paramref name="pack"/> must be seekable.</summary>
    public static async Task<string?> ProblemAsync(Stream pack, string packId, IEnumerable<ChunkLocation> expected, CancellationToken ct)
    {
        pack.Position = 0;
        var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(pack, ct));
        if (!string.Equals(actual, packId, StringComparison.Ordinal)) return $"its content hashes to {actual}, not to its id (damaged or truncated)";
        IReadOnlyList<PackEntry> entries;
        try
        {
            entries = Pack.ReadIndex(pack);
        }
        catch (InvalidDataException e)
        {
            return $"it is not a valid pack: {e.Message}";
        }
        var inPack = entries.ToDictionary(e => e.Id.ToString(), e => e);
        foreach (var location in expected)
        {
            if (!inPack.TryGetValue(location.ChunkId, out var entry)) return $"chunk {location.ChunkId} is indexed in it but not in its trailer";
            if (entry.Offset != location.Offset || entry.Length != location.Length || entry.PlainOffset != location.PlainOffset)
                return $"chunk {location.ChunkId} lies at {entry.Offset}+{entry.Length} (plaintext offset {entry.PlainOffset}), not at "
                    + $"{location.Offset}+{location.Length} (plaintext offset {location.PlainOffset}) as indexed";
        }
        return null;
    }
}
