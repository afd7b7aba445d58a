using Backup.Storage.Chunking;
using FsCheck;
using FsCheck.Xunit;

namespace Backup.UnitTests.Primitives;

public sealed class FastCdcTests
{
    private static readonly FastCdcParameters Small = new(2 * 1024, 8 * 1024, 64 * 1024);

    private static List<(long Offset, int Length)> Cut(byte[] data, FastCdcParameters? parameters = null) =>
        new FastCdcChunker(parameters ?? Small).Chunks(new MemoryStream(data)).Select(c => (c.Offset, c.Length)).ToList();

    [Property(MaxTest = 40)]
    public void Chunks_concatenate_to_the_input_and_respect_the_size_bounds(ulong seed, bool text)
    {
        // FsCheck's sizes stay small; spread lengths from empty to 3 MiB, with extra weight below one max chunk.
        var length = (int)(seed % 4 == 0 ? seed / 4 % (uint)Small.MaxSize : seed / 4 % (3u << 20));
        var data = text ? TestData.Text(seed, length) : TestData.Random(seed, length);
        var chunker = new FastCdcChunker(Small);

        using var joined = new MemoryStream();
        var chunks = new List<Chunk>();
        foreach (var chunk in chunker.Chunks(new MemoryStream(data)))
        {
            chunk.Offset.ShouldBe(joined.Length);
            joined.Write(chunk.Data.Span);
            chunks.Add(chunk);
        }

        joined.ToArray().ShouldBe(data);
        for (var i = 0; i < chunks.Count; i++)
        {
            chunks[i].Length.ShouldBeLessThanOrEqualTo(Small.MaxSize);
            if (i < chunks.Count - 1) chunks[i].Length.ShouldBeGreaterThanOrEqualTo(Small.MinSize);
            else chunks[i].Length.ShouldBeGreaterThan(0);
        }
        if (data.Length == 0) chunks.ShouldBeEmpty();
    }

    [Property(MaxTest = 25)]
    public void An_insertion_or_deletion_changes_only_the_chunks_around_it(ulong seed, PositiveInt editLength, byte where, bool delete)
    {
        const int length = 2 << 20;
        var data = TestData.Random(seed, length);
        var size = editLength.Get % 5000 + 1;
        // Somewhere in the middle third, so there is data on both sides.
        var at = length / 3 + where * (length / 3 / 256);
        byte[] edited;
        int shift;
        if (delete)
        {
            edited = new byte[length - size];
            data.AsSpan(0, at).CopyTo(edited);
            data.AsSpan(at + size).CopyTo(edited.AsSpan(at));
            shift = -size;
        }
        else
        {
            var insertion = TestData.Random(seed + 1, size);
            edited = new byte[length + size];
            data.AsSpan(0, at).CopyTo(edited);
            insertion.CopyTo(edited.AsSpan(at));
            data.AsSpan(at).CopyTo(edited.AsSpan(at + size));
            shift = size;
        }

        var before = Cut(data);
        var after = Cut(edited);

        // Every chunk that ends before the edit is untouched: a cut depends only on bytes before it.
        var untouched = before.TakeWhile(c => c.Offset + c.Length <= at).ToList();
        after.Take(untouched.Count).ShouldBe(untouched);

        // After the edit the boundaries fall back into step, and from there every chunk is the old one, shifted.
        var shiftedOld = before.Where(c => c.Offset >= at + Math.Max(0, -shift)).Select(c => (c.Offset + shift, c.Length)).ToHashSet();
        var resync = after.FindIndex(c => c.Offset >= at && shiftedOld.Contains(c));
        resync.ShouldBeGreaterThan(0, "the chunk boundaries never resynchronised after the edit");
        after.Skip(resync).ShouldAllBe(c => shiftedOld.Contains(c));

        var changedBytes = after[resync].Offset - after[untouched.Count].Offset;
        changedBytes.ShouldBeLessThan(8L * Small.MaxSize, "an edit of a few KiB rewrote far too much");
    }

    [Property(MaxTest = 10)]
    public void The_same_input_gives_the_same_chunks_whatever_the_reads(ulong seed, PositiveInt readLimit)
    {
        var data = TestData.Random(seed, 2_000_000);
        var expected = Cut(data);

        var trickled = new FastCdcChunker(Small, readSize: 4096)
            .Chunks(new TrickleStream(data, (int)((ulong)readLimit.Get * 7919 % 70_000) + 1)).Select(c => (c.Offset, c.Length)).ToList();

        trickled.ShouldBe(expected);
        Cut(data).ShouldBe(expected);
    }

    [Fact]
    public void A_stream_that_returns_short_reads_is_cut_exactly_like_one_that_does_not()
    {
        var data = TestData.Mixed(7, 3_000_000);
        var chunker = new FastCdcChunker(Small);
        var chunks = chunker.Chunks(new TrickleStream(data, 10_000)).Select(c => (c.Offset, c.Length)).ToList();

        chunks.ShouldBe(Cut(data));
    }

    [Fact]
    public void Chunk_sizes_average_near_the_target()
    {
        var chunks = Cut(TestData.Random(42, 8 << 20));

        var mean = chunks.Average(c => c.Length);
        mean.ShouldBeInRange(Small.AverageSize * 0.75, Small.AverageSize * 1.75);
        // Normalised chunking: few chunks at the extremes.
        chunks.Count(c => c.Length == Small.MaxSize).ShouldBeLessThan(chunks.Count / 100 + 1);
    }

    [Fact]
    public void Default_parameters_cut_a_known_input_at_known_places()
    {
        // Pins the format: gear table, masks and normalisation. If this fails, chunk boundaries changed and new
        // backups would no longer dedup against old ones — bump the format instead of updating the numbers.
        FastCdc.Gear[0].ShouldBe(GearZero);
        FastCdc.Gear[255].ShouldBe(GearLast);
        var lengths = Cut(TestData.Random(2026, 24 << 20), FastCdcParameters.Default).Select(c => c.Length).ToArray();

        lengths.ShouldBe(KnownLengths);
    }

    // Computed by an independent Python transcription of docs/format.md, not by this code.
    private const ulong GearZero = 5655057174099549226UL;
    private const ulong GearLast = 4537194247119376858UL;
    private static readonly int[] KnownLengths =
    [
        1508599, 1285245, 1160690, 1107968, 1301068, 1187672, 1299914, 1118876, 906672, 1286660, 1069854,
        1402442, 1681908, 1167868, 1393588, 1307340, 1178425, 694988, 1586905, 1162858, 356284,
    ];

    [Fact]
    public void Chunking_allocates_nothing_per_chunk()
    {
        var data = TestData.Random(3, 8 << 20);
        var chunker = new FastCdcChunker(Small);
        var count = 0;
        foreach (var _ in chunker.Chunks(new MemoryStream(data))) count++; // warm up (JIT, statics)

        // The least of three passes: a pass that happens to run while the runtime re-JITs a method is not the chunker's cost.
        var allocated = long.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            count = 0;
            foreach (var _ in chunker.Chunks(new MemoryStream(data))) count++;
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        count.ShouldBeGreaterThan(500);
        // Any object per chunk costs at least 24 bytes; a few KiB of one-off runtime work (tiered JIT while
        // other tests run) must not make this fail, so the bound is per chunk, not absolute.
        (allocated / (double)count).ShouldBeLessThan(8, $"{allocated} bytes for {count} chunks");
        chunker.BufferSize.ShouldBe(2 * Small.MaxSize);
    }

    [Fact]
    public void One_chunker_cuts_one_stream_at_a_time()
    {
        var chunker = new FastCdcChunker(Small);
        using var first = chunker.Chunks(new MemoryStream(TestData.Random(1, 100_000))).GetEnumerator();
        first.MoveNext().ShouldBeTrue();

        Should.Throw<InvalidOperationException>(() => chunker.Chunks(new MemoryStream(new byte[10])).ToList());
    }

    [Theory]
    [InlineData(32, 8192, 65536)]        // minimum below the gear window
    [InlineData(2048, 6000, 65536)]      // average not a power of two
    [InlineData(8192, 8192, 65536)]      // average not above the minimum
    [InlineData(2048, 8192, 8192)]       // maximum not above the average
    [InlineData(2048, 8192, 512 << 20)]  // maximum too large to buffer
    public void Nonsensical_parameters_are_refused(int min, int avg, int max) =>
        Should.Throw<ArgumentOutOfRangeException>(() => new FastCdcParameters(min, avg, max));

    [Fact]
    public void Defaults_are_512_KiB_1_MiB_8_MiB()
    {
        FastCdcParameters.Default.MinSize.ShouldBe(512 * 1024);
        FastCdcParameters.Default.AverageSize.ShouldBe(1024 * 1024);
        FastCdcParameters.Default.MaxSize.ShouldBe(8 * 1024 * 1024);
    }
}
