using System.Runtime.Versioning;
using System.Security.Cryptography;
using Backup.Agent.Restoring;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Backup.UnitTests.Primitives;

namespace Backup.UnitTests.Engine;

/// <summary>A restore never hands the user a file whose bytes differ from what was backed up, and names what is damaged.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class CorruptionTests : IDisposable
{
    private readonly BackupRig _rig = new();
    private readonly Dictionary<string, byte[]> _content = new(StringComparer.Ordinal);

    public void Dispose() => _rig.Dispose();

    // Archived in ordinal order: first.txt, last.txt, middle.bin. With 1 MiB packs, middle.bin's 8 MiB (fixed data, so
    // fixed chunk boundaries) lie in several packs, at least one of which holds neither its first chunk nor the tree.
    private async Task<BackupRun> BackUpAsync(CancellationToken ct)
    {
        _content["first.txt"] = RandomNumberGenerator.GetBytes(1000);
        _content["last.txt"] = RandomNumberGenerator.GetBytes(1000); // as long as first.txt: an index may swap their places
        _content["middle.bin"] = TestData.Random(20261125, 8 << 20);
        foreach (var (name, bytes) in _content) _rig.Write(name, bytes);
        return await _rig.BackupAsync(1 << 20, TestContext.Current.CancellationToken);
    }

    private List<ChunkLocation> Locations(BackupRun run, string path) =>
        run.Entry(path).Chunks!.Select(c => _rig.Index[ChunkId.Parse(c)]).ToList();

    private HashSet<string> TreePacks(BackupRun run) =>
        run.Manifest.Tree.Select(c => _rig.Index[ChunkId.Parse(c)].PackId).ToHashSet(StringComparer.Ordinal);

    /// <summary>A pack holding part of middle.bin, but not its first chunk and no chunk of the tree.</summary>
    private string LaterPackOfMiddle(BackupRun run)
    {
        var packs = Locations(run, "middle.bin").Select(l => l.PackId).ToList();
        var later = packs.Where(p => p != packs[0] && !TreePacks(run).Contains(p)).ToList();
        later.ShouldNotBeEmpty("middle.bin should lie in several packs");
        return later[^1];
    }

    private async Task FlipByteAsync(string packId, Func<int, int> at, CancellationToken ct)
    {
        var path = _rig.Store.PackPath(packId);
        var bytes = await File.ReadAllBytesAsync(path, ct);
        bytes[at(bytes.Length)] ^= 0x40;
        await File.WriteAllBytesAsync(path, bytes, ct);
    }

    private static string[] FilesIn(string target) =>
        Directory.Exists(target) ? Directory.GetFiles(target, "*", SearchOption.AllDirectories) : [];

    [Fact]
    public async Task Flipped_byte_in_a_stored_pack_fails_the_restore_naming_the_pack()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        var corruptPack = LaterPackOfMiddle(run);
        await FlipByteAsync(corruptPack, n => n / 2, ct);
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(run.Manifest, target, ct));

        e.Message.ShouldContain(corruptPack);
        File.Exists(Path.Combine(target, "middle.bin")).ShouldBeFalse();
        Directory.GetFiles(_rig.RestoreScratch).ShouldBeEmpty();
    }

    // Regression: the half-written middle.bin.restoring used to stay in the target when a later pack of the file failed its check.
    [Fact]
    public async Task Pack_failing_its_check_mid_file_leaves_no_file_in_the_target()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        await FlipByteAsync(LaterPackOfMiddle(run), n => n / 2, ct);
        var target = _rig.NewTarget();

        await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(run.Manifest, target, ct));

        // Files are renamed into place only once every pack has been verified, so not even the intact small files are there.
        FilesIn(target).ShouldBeEmpty();
    }

    [Fact]
    public async Task Corrupt_pack_holding_the_first_file_means_no_file_is_written()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        var firstPack = Locations(run, "first.txt").Single().PackId;
        await FlipByteAsync(firstPack, _ => 0, ct);
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(run.Manifest, target, ct));

        e.Message.ShouldContain(firstPack);
        FilesIn(target).ShouldBeEmpty();
    }

    [Fact]
    // The trailer is no chunk's: the blobs all open, and only the pack's SHA-256 at the end of its download shows the damage.
    public async Task Corrupt_trailer_of_a_stored_pack_is_caught_by_its_sha256_and_no_file_is_left_in_the_target()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        var pack = LaterPackOfMiddle(run);
        await FlipByteAsync(pack, n => n - 20, ct);
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(run.Manifest, target, ct));

        e.Message.ShouldContain(pack);
        e.Message.ShouldContain("corrupt");
        FilesIn(target).ShouldBeEmpty();
    }

    // An intact pack cannot hold a wrong chunk without the key; what can go wrong is the index pointing a chunk at another blob.
    [Fact]
    public async Task Index_pointing_a_chunk_at_another_blob_fails_the_restore_naming_the_chunk_and_the_file()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        var index = _rig.IndexFor(run.Manifest);
        var first = Locations(run, "first.txt").Single();
        var other = Locations(run, "last.txt").Single();
        index[ChunkId.Parse(first.ChunkId)] = first with { PackId = other.PackId, Offset = other.Offset, Length = other.Length, PlainOffset = other.PlainOffset };
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() =>
            _rig.RestoreAsync(run.Manifest, target, RestoreOptions.Everything, _rig.Keys, index, ct));

        e.Message.ShouldContain(first.ChunkId);
        e.Message.ShouldContain("first.txt");
        e.Message.ShouldContain("damaged");
        e.InnerException.ShouldBeOfType<ChunkMismatchException>().Actual.ToString().ShouldBe(other.ChunkId);
        FilesIn(target).ShouldBeEmpty();
        Directory.GetFiles(_rig.RestoreScratch).ShouldBeEmpty();
    }

    [Fact]
    public async Task Index_pointing_a_chunk_past_the_end_of_its_pack_fails_naming_the_pack()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        var index = _rig.IndexFor(run.Manifest);
        var first = Locations(run, "first.txt").Single();
        index[ChunkId.Parse(first.ChunkId)] = first with { Offset = _rig.Store.PackLength(first.PackId) };
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() =>
            _rig.RestoreAsync(run.Manifest, target, RestoreOptions.Everything, _rig.Keys, index, ct));

        e.Message.ShouldContain(first.PackId);
        FilesIn(target).ShouldBeEmpty();
    }

    [Fact]
    public async Task Restoring_with_another_repository_key_fails_clearly_and_leaves_nothing_in_the_target()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        using var otherKeys = MasterKeys.Generate();
        var target = _rig.NewTarget();
        var treeChunk = run.Manifest.Tree[0];

        var e = await Should.ThrowAsync<InvalidDataException>(() =>
            _rig.RestoreAsync(run.Manifest, target, RestoreOptions.Everything, otherKeys, _rig.IndexFor(run.Manifest), ct));

        e.Message.ShouldContain(treeChunk);
        e.Message.ShouldContain(_rig.Index[ChunkId.Parse(treeChunk)].PackId);
        e.Message.ShouldContain("another key");
        e.InnerException.ShouldBeOfType<BlobAuthenticationException>();
        Directory.Exists(target).ShouldBeFalse();
        Directory.GetFileSystemEntries(_rig.RestoreScratch).ShouldBeEmpty();
    }

    [Fact]
    public async Task Tree_whose_file_size_does_not_match_its_chunks_fails_naming_the_file()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        var lying = await _rig.StoreTreeAsync(run.Tree with
        {
            Entries = run.Tree.Entries.Select(e => e.Path == "middle.bin" ? e with { Size = e.Size + 1 } : e).ToList(),
        }, ct);
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(lying, target, ct));

        e.Message.ShouldContain("middle.bin");
        FilesIn(target).ShouldBeEmpty();
        Directory.GetFiles(_rig.RestoreScratch).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("../escaped.txt")]
    [InlineData("/ABSOLUTE/escaped.txt")]
    public async Task Tree_path_outside_the_target_is_refused_before_anything_is_written(string evilPath)
    {
        var ct = TestContext.Current.CancellationToken;
        // An absolute path of this test's own, so no other process can have made the file the last line looks for.
        evilPath = evilPath.Replace("/ABSOLUTE", Path.Combine(Path.GetTempPath(), $"escape-{Guid.NewGuid():N}"), StringComparison.Ordinal);
        var run = await BackUpAsync(ct);
        var evil = await _rig.StoreTreeAsync(run.Tree with
        {
            Entries = run.Tree.Entries.Select(e => e.Path == "first.txt" ? e with { Path = evilPath } : e).ToList(),
        }, ct);
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(evil, target, ct));

        e.Message.ShouldContain(evilPath);
        Directory.Exists(target).ShouldBeFalse();
        File.Exists(Path.GetFullPath(Path.Combine(target, evilPath))).ShouldBeFalse();
    }

    [Fact]
    public async Task Pack_missing_from_the_store_fails_the_restore()
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        File.Delete(_rig.Store.PackPath(LaterPackOfMiddle(run)));
        var target = _rig.NewTarget();

        await Should.ThrowAsync<FileNotFoundException>(() => _rig.RestoreAsync(run.Manifest, target, ct));

        FilesIn(target).ShouldBeEmpty();
    }

    // Regression: the fetched-into file restore-<packId> used to stay in scratch when the fetch itself failed.
    [Theory]
    [InlineData("first.txt")]  // nothing, or only the tree's pack, fetched yet when the fetch fails
    [InlineData("middle.bin")] // a later pack of the file: earlier packs are fetched and part of the file is written
    public async Task Pack_missing_from_the_store_leaves_restore_scratch_empty(string fileOfTheMissingPack)
    {
        var ct = TestContext.Current.CancellationToken;
        var run = await BackUpAsync(ct);
        var missing = fileOfTheMissingPack == "middle.bin" ? LaterPackOfMiddle(run) : Locations(run, fileOfTheMissingPack).Single().PackId;
        File.Delete(_rig.Store.PackPath(missing));
        var target = _rig.NewTarget();

        await Should.ThrowAsync<FileNotFoundException>(() => _rig.RestoreAsync(run.Manifest, target, ct));

        Directory.GetFileSystemEntries(_rig.RestoreScratch).ShouldBeEmpty();
        FilesIn(target).ShouldBeEmpty();
    }
}
