using System.Runtime.Versioning;
using System.Security.Cryptography;
using Backup.Agent.BackingUp;
using Backup.Storage.Format;

namespace Backup.UnitTests.Engine;

/// <summary>A restore never hands the user a file whose bytes differ from what was backed up.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class CorruptionTests : IDisposable
{
    private readonly BackupRig _rig = new();
    private readonly Dictionary<string, byte[]> _content = new(StringComparer.Ordinal);

    public void Dispose() => _rig.Dispose();

    // Archived in ordinal order: first.txt, last.txt, middle.bin; with 1 MiB packs middle.bin spans four packs,
    // and its last pack holds nothing else.
    private async Task<ArchiveResult> BackUpAsync(CancellationToken ct)
    {
        _content["first.txt"] = RandomNumberGenerator.GetBytes(1000);
        _content["last.txt"] = RandomNumberGenerator.GetBytes(2000);
        _content["middle.bin"] = RandomNumberGenerator.GetBytes(3 << 20);
        foreach (var (name, bytes) in _content) _rig.Write(name, bytes);
        return await _rig.BackupAsync(1 << 20, ct);
    }

    private static ManifestEntry Entry(ArchiveResult result, string path) => result.Manifest.Entries.Single(e => e.Path == path);

    private void ShouldHoldOnlyIntactFiles(string target)
    {
        foreach (var file in Directory.GetFiles(target, "*", SearchOption.AllDirectories))
        {
            var name = Path.GetRelativePath(target, file);
            if (_content.TryGetValue(name, out var expected)) File.ReadAllBytes(file).ShouldBe(expected, name);
        }
    }

    [Fact]
    public async Task Flipped_byte_in_a_stored_pack_fails_the_restore_naming_the_pack()
    {
        var ct = TestContext.Current.CancellationToken;
        var result = await BackUpAsync(ct);
        var corruptPack = Entry(result, "middle.bin").Segments!.Last().PackId;
        var packPath = _rig.Store.PackPath(corruptPack);
        var bytes = await File.ReadAllBytesAsync(packPath, ct);
        bytes[bytes.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(packPath, bytes, ct);
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(result.Manifest, target, ct));

        e.Message.ShouldContain(corruptPack);
        File.Exists(Path.Combine(target, "middle.bin")).ShouldBeFalse();
        ShouldHoldOnlyIntactFiles(target);
        Directory.GetFiles(_rig.RestoreScratch).ShouldBeEmpty();
    }

    // Regression: the half-written middle.bin.restoring used to stay in the target when a later pack of the file failed its check.
    [Fact]
    public async Task Pack_failing_its_check_mid_file_leaves_no_restoring_file_in_the_target()
    {
        var ct = TestContext.Current.CancellationToken;
        var result = await BackUpAsync(ct);
        var segments = Entry(result, "middle.bin").Segments!;
        segments.Count.ShouldBeGreaterThan(1); // the bad pack is not the file's first, so some of it was written already
        var packPath = _rig.Store.PackPath(segments.Last().PackId);
        var bytes = await File.ReadAllBytesAsync(packPath, ct);
        bytes[bytes.Length / 2] ^= 0x40;
        await File.WriteAllBytesAsync(packPath, bytes, ct);
        var target = _rig.NewTarget();

        await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(result.Manifest, target, ct));

        Directory.GetFiles(target, "*.restoring", SearchOption.AllDirectories).ShouldBeEmpty();
        Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal).ShouldBe(["first.txt", "last.txt"]);
        ShouldHoldOnlyIntactFiles(target);
    }

    [Fact]
    public async Task Corrupt_first_pack_means_no_file_needing_it_is_written()
    {
        var ct = TestContext.Current.CancellationToken;
        var result = await BackUpAsync(ct);
        var firstPack = Entry(result, "first.txt").Segments!.Single().PackId;
        var packPath = _rig.Store.PackPath(firstPack);
        var bytes = await File.ReadAllBytesAsync(packPath, ct);
        bytes[0] ^= 0x01;
        await File.WriteAllBytesAsync(packPath, bytes, ct);
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(result.Manifest, target, ct));

        e.Message.ShouldContain(firstPack);
        File.Exists(Path.Combine(target, "first.txt")).ShouldBeFalse();
        ShouldHoldOnlyIntactFiles(target);
    }

    [Fact]
    public async Task File_not_matching_its_recorded_sha256_is_not_left_in_place()
    {
        var ct = TestContext.Current.CancellationToken;
        var result = await BackUpAsync(ct);
        var wrongSha = Convert.ToHexStringLower(SHA256.HashData("something else"u8));
        var lying = result.Manifest with
        {
            Entries = result.Manifest.Entries.Select(e => e.Path == "middle.bin" ? e with { Sha256 = wrongSha } : e).ToList(),
        };
        var target = _rig.NewTarget();

        var e = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(lying, target, ct));

        e.Message.ShouldContain("middle.bin");
        File.Exists(Path.Combine(target, "middle.bin")).ShouldBeFalse();
        Directory.GetFiles(target).Select(Path.GetFileName).Order(StringComparer.Ordinal).ShouldBe(["first.txt", "last.txt"]);
        ShouldHoldOnlyIntactFiles(target);
        Directory.GetFiles(_rig.RestoreScratch).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("../escaped.txt")]
    [InlineData("/tmp/escaped.txt")]
    public async Task Manifest_path_outside_the_target_is_refused_before_anything_is_written(string evilPath)
    {
        var ct = TestContext.Current.CancellationToken;
        var result = await BackUpAsync(ct);
        var evil = result.Manifest with
        {
            Entries = result.Manifest.Entries.Select(e => e.Path == "first.txt" ? e with { Path = evilPath } : e).ToList(),
        };
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
        var result = await BackUpAsync(ct);
        File.Delete(_rig.Store.PackPath(Entry(result, "middle.bin").Segments!.Last().PackId));
        var target = _rig.NewTarget();

        await Should.ThrowAsync<FileNotFoundException>(() => _rig.RestoreAsync(result.Manifest, target, ct));

        File.Exists(Path.Combine(target, "middle.bin")).ShouldBeFalse();
        ShouldHoldOnlyIntactFiles(target);
    }

    // Regression: the fetched-into file restore-<packId> used to stay in scratch when the fetch itself failed.
    [Theory]
    [InlineData("first.txt")]  // nothing cached yet when the fetch fails
    [InlineData("middle.bin")] // the file's last pack: earlier packs are cached and half the file is written
    public async Task Pack_missing_from_the_store_leaves_restore_scratch_empty(string fileOfTheMissingPack)
    {
        var ct = TestContext.Current.CancellationToken;
        var result = await BackUpAsync(ct);
        File.Delete(_rig.Store.PackPath(Entry(result, fileOfTheMissingPack).Segments!.Last().PackId));
        var target = _rig.NewTarget();

        await Should.ThrowAsync<FileNotFoundException>(() => _rig.RestoreAsync(result.Manifest, target, ct));

        Directory.GetFileSystemEntries(_rig.RestoreScratch).ShouldBeEmpty();
        Directory.GetFiles(target, "*.restoring", SearchOption.AllDirectories).ShouldBeEmpty();
    }
}
