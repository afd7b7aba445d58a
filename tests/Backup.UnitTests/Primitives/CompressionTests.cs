using Backup.Storage.Compression;
using FsCheck.Xunit;

namespace Backup.UnitTests.Primitives;

public sealed class CompressionTests
{
    [Fact]
    public void Text_compresses_and_comes_back_identical()
    {
        using var zstd = new ChunkCompressor();
        var text = TestData.Text(1, 1 << 20);
        var frame = new byte[text.Length];

        zstd.TryCompress(text, frame, out var written).ShouldBeTrue();
        written.ShouldBeLessThan(text.Length / 3);

        var back = new byte[text.Length];
        zstd.Decompress(frame.AsSpan(0, written), back).ShouldBe(text.Length);
        back.ShouldBe(text);
    }

    [Fact]
    public void Random_data_is_not_compressed()
    {
        using var zstd = new ChunkCompressor();
        var random = TestData.Random(2, 1 << 20);

        zstd.TryCompress(random, new byte[random.Length + 1024], out _).ShouldBeFalse();
    }

    [Property(MaxTest = 40)]
    public void Whatever_compresses_round_trips(byte[] data, bool repeat)
    {
        var input = repeat ? Enumerable.Repeat(data, 50).SelectMany(b => b).ToArray() : data;
        using var zstd = new ChunkCompressor();
        var frame = new byte[input.Length];
        if (!zstd.TryCompress(input, frame, out var written)) return;

        written.ShouldBeLessThan(input.Length);
        var back = new byte[input.Length];
        zstd.Decompress(frame.AsSpan(0, written), back).ShouldBe(input.Length);
        back.ShouldBe(input);
    }

    [Fact]
    public void A_frame_that_would_expand_beyond_the_allowed_size_is_refused()
    {
        using var zstd = new ChunkCompressor();
        var zeros = new byte[1 << 20];
        var frame = new byte[zeros.Length];
        zstd.TryCompress(zeros, frame, out var written).ShouldBeTrue();

        Should.Throw<InvalidDataException>(() => zstd.Decompress(frame.AsSpan(0, written), new byte[1000]));
    }

    [Fact]
    public void A_corrupt_frame_is_reported_not_returned()
    {
        using var zstd = new ChunkCompressor();
        Should.Throw<InvalidDataException>(() => zstd.Decompress(TestData.Random(3, 200), new byte[1 << 16]));
    }

    [Fact]
    public void Levels_outside_zstd_range_are_refused() =>
        Should.Throw<ArgumentOutOfRangeException>(() => new ChunkCompressor(99));
}
