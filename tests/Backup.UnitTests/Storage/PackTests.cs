using System.Buffers.Binary;
using Backup.Storage.Format;
using Backup.UnitTests.Support;
using FsCheck;
using FsCheck.Xunit;

namespace Backup.UnitTests.Storage;

/// <summary>The version 2 pack: whatever blobs go in, its trailer gives them back, and a damaged trailer is refused.</summary>
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
    public void Header_that_is_not_a_version_2_pack_is_invalid_data()
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

    [Fact]
    public async Task Builder_refuses_blobs_no_reader_would_accept()
    {
        await using var builder = new PackBuilder(Path.Combine(_temp.Path, "p"));

        Should.Throw<ArgumentException>(() => builder.Add(default, new byte[Pack.MinBlobLength - 1], 0));
        Should.Throw<ArgumentOutOfRangeException>(() => builder.Add(default, new byte[Pack.MinBlobLength], Pack.MaxPlainLength + 1));
        builder.Count.ShouldBe(0);
    }
}
