using System.Security.Cryptography;
using Backup.Agent.BackingUp;
using Backup.Storage.Format;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Engine;

public sealed class PackWriterTests : IDisposable
{
    private readonly TempDirectory _scratch = new();
    private readonly Dictionary<string, byte[]> _sealed = new(StringComparer.Ordinal);
    private readonly List<(string PackId, int Segments)> _seals = [];

    public void Dispose() => _scratch.Dispose();

    private PackWriter Writer(long targetBytes) => new(_scratch.Path, targetBytes, async (file, packId, segments) =>
    {
        _sealed[packId] = await File.ReadAllBytesAsync(file);
        _seals.Add((packId, segments));
    });

    private byte[] Reassemble(IEnumerable<PackSegment> segments) =>
        segments.SelectMany(s => _sealed[s.PackId].AsSpan((int)s.Offset, (int)s.Length).ToArray()).ToArray();

    [Fact]
    public async Task Large_file_spans_packs_whose_segments_add_up_to_the_file()
    {
        var ct = TestContext.Current.CancellationToken;
        var content = RandomNumberGenerator.GetBytes((10 << 20) + 123);
        await using var writer = Writer(1 << 20);

        var (provisional, sha, bytes) = await writer.AddAsync(new MemoryStream(content), ct);
        await writer.FlushAsync(ct);
        var segments = provisional.Select(writer.Resolve).ToList();

        bytes.ShouldBe(content.Length);
        sha.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(content)));
        segments.Count.ShouldBe(11);
        segments.Sum(s => s.Length).ShouldBe(content.Length);
        segments.Select(s => s.PackId).Distinct().Count().ShouldBe(11);
        writer.PacksWritten.ShouldBe(11);
        Reassemble(segments).ShouldBe(content);
    }

    [Fact]
    public async Task Every_sealed_pack_is_named_by_the_sha256_of_its_bytes_and_stays_within_the_target()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var writer = Writer(256 << 10);
        foreach (var size in new[] { 1, 300_000, 0, 70_000, 1_000_000 })
            await writer.AddAsync(new MemoryStream(RandomNumberGenerator.GetBytes(size)), ct);
        await writer.FlushAsync(ct);

        _sealed.Count.ShouldBeGreaterThan(1);
        foreach (var (packId, bytes) in _sealed)
        {
            packId.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(bytes)));
            PackId.IsValid(packId).ShouldBeTrue();
            bytes.Length.ShouldBeLessThanOrEqualTo(256 << 10);
        }
    }

    [Fact]
    public async Task Small_files_share_one_pack_back_to_back()
    {
        var ct = TestContext.Current.CancellationToken;
        var files = Enumerable.Range(1, 5).Select(i => RandomNumberGenerator.GetBytes(100 * i)).ToList();
        await using var writer = Writer(1 << 20);

        var added = new List<IReadOnlyList<ProvisionalSegment>>();
        foreach (var file in files) added.Add((await writer.AddAsync(new MemoryStream(file), ct)).Segments);
        _seals.ShouldBeEmpty(); // nothing reaches the target size, so nothing is sealed before the flush
        await writer.FlushAsync(ct);

        var (packId, segmentCount) = _seals.ShouldHaveSingleItem();
        segmentCount.ShouldBe(5);
        long expectedOffset = 0;
        for (var i = 0; i < files.Count; i++)
        {
            var segment = writer.Resolve(added[i].ShouldHaveSingleItem());
            segment.PackId.ShouldBe(packId);
            segment.Offset.ShouldBe(expectedOffset);
            expectedOffset += files[i].Length;
            Reassemble([segment]).ShouldBe(files[i]);
        }
    }

    [Fact]
    public async Task Empty_file_needs_no_pack()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var writer = Writer(1 << 20);

        var (segments, sha, bytes) = await writer.AddAsync(new MemoryStream(), ct);
        await writer.FlushAsync(ct);

        segments.ShouldBeEmpty();
        bytes.ShouldBe(0);
        sha.ShouldBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        writer.PacksWritten.ShouldBe(0);
        _seals.ShouldBeEmpty();
    }

    [Fact]
    public async Task Scratch_pack_files_are_removed_once_sealed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var writer = Writer(64 << 10);

        await writer.AddAsync(new MemoryStream(RandomNumberGenerator.GetBytes(200_000)), ct);
        await writer.FlushAsync(ct);

        _seals.Count.ShouldBe(4);
        Directory.GetFiles(_scratch.Path).ShouldBeEmpty();
    }

    [Fact]
    public async Task Unsealed_segment_cannot_be_resolved()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var writer = Writer(1 << 20);

        var (segments, _, _) = await writer.AddAsync(new MemoryStream(new byte[10]), ct);

        Should.Throw<InvalidOperationException>(() => writer.Resolve(segments[0]));
    }

    [Fact]
    public async Task Failed_seal_surfaces_and_leaves_no_scratch_file()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var writer = new PackWriter(_scratch.Path, 1 << 20, (_, _, _) => throw new IOException("server went away"));

        await writer.AddAsync(new MemoryStream(new byte[1000]), ct);
        var e = await Should.ThrowAsync<PackSealException>(() => writer.FlushAsync(ct));

        e.InnerException.ShouldBeOfType<IOException>().Message.ShouldBe("server went away");
        Directory.GetFiles(_scratch.Path).ShouldBeEmpty();
        // The run is over: nothing more may be added to packs that can no longer be committed.
        await Should.ThrowAsync<InvalidOperationException>(() => writer.AddAsync(new MemoryStream(new byte[10]), ct));
    }
}
