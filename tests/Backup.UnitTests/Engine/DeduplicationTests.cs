using System.Runtime.Versioning;
using Backup.Storage.Crypto;
using Backup.UnitTests.Primitives;

namespace Backup.UnitTests.Engine;

/// <summary>Content is stored once: within a run, across runs, and after an edit only the chunks around the edit are new.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class DeduplicationTests : IDisposable
{
    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private long StoredBytes() => _rig.StoredPacks().Sum(_rig.Store.PackLength);

    [Fact]
    public async Task Same_file_under_two_names_stores_its_chunks_once()
    {
        var ct = TestContext.Current.CancellationToken;
        var content = TestData.Random(7, 3 << 20);
        _rig.Write("one.bin", content);
        _rig.Write("copy/two.bin", content);

        var run = await _rig.BackupAsync(16 << 20, ct);

        var chunks = run.Entry("one.bin").Chunks.ShouldNotBeNull();
        run.Entry("copy/two.bin").Chunks.ShouldBe(chunks);
        var p = run.Archive.Pipeline;
        p.ChunksSeen.ShouldBe(2 * chunks.Count + run.Archive.TreeChunks.Count);
        p.ChunksNew.ShouldBe(chunks.Count + run.Archive.TreeChunks.Count);
        StoredBytes().ShouldBeLessThan(content.Length + (256 << 10)); // one copy of random data, plus envelopes, trailer and tree

        var target = _rig.NewTarget();
        await _rig.RestoreAsync(run.Manifest, target, ct);
        File.ReadAllBytes(Path.Combine(target, "one.bin")).ShouldBe(content);
        File.ReadAllBytes(Path.Combine(target, "copy", "two.bin")).ShouldBe(content);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Second_backup_of_an_unchanged_tree_uploads_no_pack_and_restores_the_same(bool useCache)
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.bin", TestData.Random(1, 2 << 20));
        _rig.Write("d/b.txt", TestData.Text(2, 300_000));
        _rig.Write("d/empty", []);
        var first = await _rig.BackupAsync(1 << 20, _ => { }, useCache, ct);
        var packs = _rig.StoredPacks();

        var second = await _rig.BackupAsync(1 << 20, _ => { }, useCache, ct);

        second.Archive.Pipeline.Packs.ShouldBe(0);
        second.Archive.Pipeline.ChunksNew.ShouldBe(0);
        _rig.StoredPacks().ShouldBe(packs, ignoreOrder: true);
        second.Manifest.Tree.ShouldBe(first.Manifest.Tree); // same tree, same chunks
        second.Manifest.Packs.ShouldBe(first.Manifest.Packs);
        var target = _rig.NewTarget();
        await _rig.RestoreAsync(second.Manifest, target, ct);
        TreeSnapshot.Of(target).Values.ShouldBe(TreeSnapshot.Of(_rig.Source).Values);
    }

    [Fact]
    public async Task Inserting_100_bytes_in_the_middle_of_a_24_MiB_file_stores_only_a_few_new_chunks()
    {
        var ct = TestContext.Current.CancellationToken;
        var original = TestData.Random(24, 24 << 20);
        _rig.Write("big.bin", original);
        var first = await _rig.BackupAsync(16 << 20, ct);
        var before = first.Entry("big.bin").Chunks.ShouldNotBeNull();
        var known = _rig.Index.Keys.ToHashSet();
        byte[] edited = [.. original.AsSpan(0, 12 << 20), .. TestData.Random(100, 100), .. original.AsSpan(12 << 20)];
        _rig.Write("big.bin", edited);

        var second = await _rig.BackupAsync(16 << 20, ct);

        var after = second.Entry("big.bin").Chunks.ShouldNotBeNull();
        before.Count.ShouldBeGreaterThan(12);
        var newChunks = after.Count(c => !known.Contains(ChunkId.Parse(c)));
        newChunks.ShouldBeInRange(1, 3);
        // What the pipeline stored is exactly those chunks and the new tree.
        second.Archive.Pipeline.ChunksNew.ShouldBe(newChunks + second.Archive.TreeChunks.Count);
        second.Archive.Pipeline.PlainBytesNew.ShouldBeLessThan(4L << 20); // of 24 MiB
        var target = _rig.NewTarget();
        await _rig.RestoreAsync(second.Manifest, target, ct);
        File.ReadAllBytes(Path.Combine(target, "big.bin")).ShouldBe(edited);
    }

    [Fact]
    public async Task Older_recovery_point_still_restores_after_a_newer_one_shares_its_chunks()
    {
        var ct = TestContext.Current.CancellationToken;
        var v1 = TestData.Random(3, 2 << 20);
        _rig.Write("f.bin", v1);
        var first = await _rig.BackupAsync(1 << 20, ct);
        _rig.Write("f.bin", [.. v1, .. TestData.Random(4, 1000)]);
        await _rig.BackupAsync(1 << 20, ct);
        var target = _rig.NewTarget();

        await _rig.RestoreAsync(first.Manifest, target, ct);

        File.ReadAllBytes(Path.Combine(target, "f.bin")).ShouldBe(v1);
    }
}
