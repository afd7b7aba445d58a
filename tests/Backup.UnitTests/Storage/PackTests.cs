using System.Buffers.Binary;
using System.Security.Cryptography;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Backup.UnitTests.Support;
using FsCheck;
using FsCheck.Xunit;

namespace Backup.UnitTests.Storage;

/// <summary>The version 3 pack: whatever blobs and groups go in, its trailer gives them back, a damaged trailer is refused, and version 2 packs are still read.</summary>
public sealed class PackTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>FsCheck's arrays are short; pad each to the shortest blob a pack accepts.</summary>
    private static List<byte[]> Blobs(byte[][] raw) =>
        (raw ?? []).Select(b => b ?? []).Select(b => b.Length >= Pack.MinBlobLength ? b : [.. b, .. new byte[Pack.MinBlobLength - b.Length]]).ToList();

    [Property(MaxTest = 60)]
    public async Task Pack_of_arbitrary_blobs_round_trips_through_its_trailer(byte[][] raw)
    {
        var blobs = Blobs(raw);
        var (_, bytes, built) = await TestPacks.BuildAsync(_temp.Path, blobs, TestContext.Current.CancellationToken);

        var entries = Pack.ReadIndex(new MemoryStream(bytes));

        entries.ShouldBe(built);
        entries.Count.ShouldBe(blobs.Count);
        for (var i = 0; i < blobs.Count; i++)
        {
            entries[i].PlainLength.ShouldBe(blobs[i].Length - Pack.MinBlobLength);
            bytes.AsSpan((int)entries[i].Offset, entries[i].Length).ToArray().ShouldBe(blobs[i]);
        }
        bytes.Length.ShouldBe(Pack.EmptyLength + blobs.Sum(b => b.Length + Pack.TrailerRecordSize));
    }

    [Property(MaxTest = 60)]
    public async Task Truncated_pack_is_invalid_data(byte[][] raw, PositiveInt cut)
    {
        var (_, bytes, _) = await TestPacks.BuildAsync(_temp.Path, Blobs(raw), TestContext.Current.CancellationToken);
        var length = bytes.Length - 1 - cut.Get % bytes.Length;

        Should.Throw<InvalidDataException>(() => Pack.ReadIndex(new MemoryStream(bytes, 0, length)));
    }

    [Property(MaxTest = 100)]
    public async Task Flipped_byte_in_the_trailer_is_invalid_data(byte[][] raw, NonNegativeInt where, byte mask)
    {
        var blobs = Blobs(raw);
        var (_, bytes, _) = await TestPacks.BuildAsync(_temp.Path, blobs, TestContext.Current.CancellationToken);
        var trailerStart = bytes.Length - blobs.Count * Pack.TrailerRecordSize - 4 - Pack.MagicSize;
        // Chunk ids and plaintext lengths are opaque to the pack (opening the blob checks them), so flip a byte of a blob
        // length, the count or the end mark: the parts that give the pack its structure.
        var structural = Enumerable.Range(trailerStart, bytes.Length - trailerStart)
            .Where(i => i >= bytes.Length - 4 - Pack.MagicSize || (i - trailerStart) % Pack.TrailerRecordSize is >= 32 and < 36).ToList();
        var at = structural[where.Get % structural.Count];
        bytes[at] ^= mask == 0 ? (byte)1 : mask;

        Should.Throw<InvalidDataException>(() => Pack.ReadIndex(new MemoryStream(bytes)));
    }

    [Fact]
    public void Header_that_is_not_a_version_2_or_3_pack_is_invalid_data()
    {
        var bytes = new byte[Pack.EmptyLength];
        "BKPACK1\n"u8.CopyTo(bytes);
        Pack.EndMagic.CopyTo(bytes.AsSpan(bytes.Length - Pack.MagicSize));

        Should.Throw<InvalidDataException>(() => Pack.ReadIndex(new MemoryStream(bytes))).Message.ShouldContain("header");
    }

    [Fact]
    public void Count_claiming_more_blobs_than_the_pack_can_hold_is_invalid_data()
    {
        var bytes = new byte[Pack.EmptyLength];
        Pack.HeadMagic.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(Pack.MagicSize), uint.MaxValue);
        Pack.EndMagic.CopyTo(bytes.AsSpan(bytes.Length - Pack.MagicSize));

        Should.Throw<InvalidDataException>(() => Pack.ReadIndex(new MemoryStream(bytes))).Message.ShouldContain("claims");
    }

    /// <summary>Groups of 1–4 chunks of the given plaintext lengths (each group one blob), then one single-chunk blob.</summary>
    private async Task<(byte[] Bytes, IReadOnlyList<PackEntry> Built)> GroupedAsync(IReadOnlyList<int[]> groups)
    {
        var path = Path.Combine(_temp.Path, $"grouped-{Guid.NewGuid():N}");
        await using var builder = new PackBuilder(path);
        foreach (var lengths in groups)
        {
            var offset = 0;
            var chunks = lengths.Select(length => (Id: new ChunkId(RandomNumberGenerator.GetBytes(ChunkId.Size)), PlainOffset: (offset += length) - length, PlainLength: length)).ToList();
            builder.Add(chunks, RandomNumberGenerator.GetBytes(Pack.MinBlobLength + lengths.Sum() / 3));
        }
        builder.Add(new ChunkId(RandomNumberGenerator.GetBytes(ChunkId.Size)), RandomNumberGenerator.GetBytes(Pack.MinBlobLength + 10), 10);
        await builder.FinishAsync(TestContext.Current.CancellationToken);
        return (await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken), builder.Entries.ToList());
    }

    [Property(MaxTest = 40)]
    public async Task Pack_of_grouped_chunks_gives_each_chunk_its_blob_and_place_in_the_blob(PositiveInt[][] raw)
    {
        var groups = (raw ?? []).Where(g => g is { Length: > 0 }).Select(g => g.Take(4).Select(n => 1 + n.Get % 100_000).ToArray()).ToList();
        var (bytes, built) = await GroupedAsync(groups);

        var entries = Pack.ReadIndex(new MemoryStream(bytes));

        entries.ShouldBe(built);
        entries.Count.ShouldBe(groups.Sum(g => g.Length) + 1);
        var i = 0;
        foreach (var group in groups)
        {
            var blob = entries[i];
            var plainOffset = 0;
            foreach (var length in group)
            {
                // Every chunk of a group points at the group's one blob, at the plaintext bytes that are its own.
                (entries[i].Offset, entries[i].Length).ShouldBe((blob.Offset, blob.Length));
                (entries[i].PlainOffset, entries[i].PlainLength).ShouldBe((plainOffset, length));
                plainOffset += length;
                i++;
            }
        }
        entries[^1].PlainOffset.ShouldBe(0);
        bytes.Length.ShouldBe(Pack.EmptyLength + entries.DistinctBy(e => e.Offset).Sum(e => e.Length) + entries.Count * Pack.TrailerRecordSize);
    }

    [Fact]
    public async Task Record_that_does_not_continue_its_group_where_the_chunk_before_ends_is_invalid_data()
    {
        var (bytes, _) = await GroupedAsync([[1000, 2000, 3000]]);
        var trailerStart = bytes.Length - 4 * Pack.TrailerRecordSize - 4 - Pack.MagicSize;
        var thirdPlainOffset = trailerStart + 2 * Pack.TrailerRecordSize + ChunkId.Size + 8;
        BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(thirdPlainOffset)).ShouldBe(3000u);

        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(thirdPlainOffset), 2999);

        Should.Throw<InvalidDataException>(() => Pack.ReadIndex(new MemoryStream(bytes))).Message.ShouldContain("does not follow on");
    }

    [Fact]
    public void Version_2_pack_is_still_read_with_one_chunk_per_blob()
    {
        // Written by hand as format version 2 wrote it: 40-byte records without a plaintext offset.
        var blobs = new[] { RandomNumberGenerator.GetBytes(Pack.MinBlobLength + 5), RandomNumberGenerator.GetBytes(Pack.MinBlobLength + 70) };
        var ids = blobs.Select(_ => new ChunkId(RandomNumberGenerator.GetBytes(ChunkId.Size))).ToArray();
        var pack = new MemoryStream();
        pack.Write(Pack.HeadMagicV2);
        foreach (var blob in blobs) pack.Write(blob);
        var record = new byte[Pack.TrailerRecordSizeV2];
        for (var i = 0; i < blobs.Length; i++)
        {
            ids[i].WriteTo(record);
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(ChunkId.Size), (uint)blobs[i].Length);
            BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(ChunkId.Size + 4), (uint)(blobs[i].Length - Pack.MinBlobLength));
            pack.Write(record);
        }
        pack.Write(BitConverter.GetBytes((uint)blobs.Length));
        pack.Write(Pack.EndMagicV2);

        var entries = Pack.ReadIndex(pack);

        entries.ShouldBe([
            new PackEntry(ids[0], Pack.MagicSize, blobs[0].Length, 5),
            new PackEntry(ids[1], Pack.MagicSize + blobs[0].Length, blobs[1].Length, 70),
        ]);
    }

    [Fact]
    public async Task Builder_refuses_a_group_whose_chunks_do_not_follow_each_other()
    {
        await using var builder = new PackBuilder(Path.Combine(_temp.Path, "g"));
        var blob = new byte[Pack.MinBlobLength + 10];

        Should.Throw<ArgumentException>(() => builder.Add([(default, 0, 10), (default, 11, 5)], blob));
        Should.Throw<ArgumentException>(() => builder.Add([(default, 1, 10)], blob));
        Should.Throw<ArgumentException>(() => builder.Add([(default, 0, 0)], blob));
        Should.Throw<ArgumentException>(() => builder.Add([], blob));
        builder.Count.ShouldBe(0);
    }

    [Fact]
    public async Task Builder_refuses_blobs_no_reader_would_accept()
    {
        await using var builder = new PackBuilder(Path.Combine(_temp.Path, "p"));

        Should.Throw<ArgumentException>(() => builder.Add(default, new byte[Pack.MinBlobLength - 1], 0));
        Should.Throw<ArgumentOutOfRangeException>(() => builder.Add(default, new byte[Pack.MinBlobLength], Pack.MaxPlainLength + 1));
        builder.Count.ShouldBe(0);
    }
}
