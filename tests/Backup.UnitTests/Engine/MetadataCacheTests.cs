using System.Runtime.Versioning;
using System.Security.Cryptography;
using Backup.Storage.Crypto;

namespace Backup.UnitTests.Engine;

/// <summary>
/// The agent's metadata cache spares reading files that have not changed since the last committed run; it is only a hint,
/// so whatever state it is in, the backup is the same as a full read would give.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class MetadataCacheTests : IDisposable
{
    private const int FileCount = 2000;
    private readonly BackupRig _rig = new();
    private long _totalBytes;

    public void Dispose() => _rig.Dispose();

    private async Task<BackupRun> BackUpManySmallFilesAsync(CancellationToken ct)
    {
        for (var i = 0; i < FileCount; i++)
        {
            var content = RandomNumberGenerator.GetBytes(10 + i % 500);
            _rig.Write($"dir-{i % 20:D2}/file-{i:D4}.dat", content);
            _totalBytes += content.Length;
        }
        var first = await _rig.BackupAsync(4 << 20, ct);
        first.Archive.Files.ShouldBe(FileCount);
        first.Archive.BytesScanned.ShouldBe(_totalBytes);
        first.Archive.FilesFromCache.ShouldBe(0);
        return first;
    }

    private async Task ShouldRestoreTheSourceAsync(BackupRun run, CancellationToken ct)
    {
        var target = _rig.NewTarget($"target-{Guid.NewGuid():N}");
        await _rig.RestoreAsync(run.Manifest, target, ct);
        TreeSnapshot.Of(target).Values.ShouldBe(TreeSnapshot.Of(_rig.Source).Values);
    }

    [Fact]
    public async Task Second_run_of_an_unchanged_tree_reads_no_file_data()
    {
        var ct = TestContext.Current.CancellationToken;
        var first = await BackUpManySmallFilesAsync(ct);

        var second = await _rig.BackupAsync(4 << 20, ct);

        second.Archive.BytesScanned.ShouldBe(0);
        second.Archive.FilesFromCache.ShouldBe(FileCount);
        second.Archive.BytesRead.ShouldBe(_totalBytes);
        second.Tree.Entries.ShouldBe(first.Tree.Entries, new TreeEntryComparer());
        await ShouldRestoreTheSourceAsync(second, ct);
    }

    [Fact]
    public async Task Touching_one_files_mtime_makes_exactly_that_file_be_read()
    {
        var ct = TestContext.Current.CancellationToken;
        await BackUpManySmallFilesAsync(ct);
        var touched = Path.Combine(_rig.Source, "dir-07", "file-0107.dat");
        File.SetLastWriteTimeUtc(touched, File.GetLastWriteTimeUtc(touched).AddSeconds(1));

        var second = await _rig.BackupAsync(4 << 20, ct);

        second.Archive.FilesFromCache.ShouldBe(FileCount - 1);
        second.Archive.BytesScanned.ShouldBe(new FileInfo(touched).Length);
        second.Entry("dir-07/file-0107.dat").MtimeUtcTicks.ShouldBe(File.GetLastWriteTimeUtc(touched).Ticks);
        await ShouldRestoreTheSourceAsync(second, ct);
    }

    [Fact]
    public async Task Changed_content_of_the_same_size_and_mtime_is_still_read_because_ctime_changed()
    {
        var ct = TestContext.Current.CancellationToken;
        await BackUpManySmallFilesAsync(ct);
        var path = Path.Combine(_rig.Source, "dir-03", "file-0003.dat");
        var mtime = File.GetLastWriteTimeUtc(path);
        var replacement = RandomNumberGenerator.GetBytes((int)new FileInfo(path).Length);
        await File.WriteAllBytesAsync(path, replacement, ct);
        File.SetLastWriteTimeUtc(path, mtime);

        var second = await _rig.BackupAsync(4 << 20, ct);

        second.Archive.FilesFromCache.ShouldBe(FileCount - 1);
        var target = _rig.NewTarget();
        await _rig.RestoreAsync(second.Manifest, target, new Backup.Agent.Restoring.RestoreOptions(["dir-03/file-0003.dat"]), ct);
        File.ReadAllBytes(Path.Combine(target, "dir-03", "file-0003.dat")).ShouldBe(replacement);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("truncated")]
    [InlineData("empty")]
    public async Task Corrupt_cache_file_means_a_full_read_never_a_wrong_backup(string damage)
    {
        var ct = TestContext.Current.CancellationToken;
        var first = await BackUpManySmallFilesAsync(ct);
        var bytes = await File.ReadAllBytesAsync(_rig.CachePath, ct);
        await File.WriteAllBytesAsync(_rig.CachePath, damage switch
        {
            "garbage" => RandomNumberGenerator.GetBytes(bytes.Length),
            "truncated" => bytes[..(bytes.Length / 2)],
            _ => [],
        }, ct);

        var second = await _rig.BackupAsync(4 << 20, ct);

        if (damage == "truncated")
        {
            // The entries before the cut are whole and still vouch for their files (each checked against the file and the
            // server as always); the files after it are read.
            second.Archive.FilesFromCache.ShouldBeInRange(1, FileCount - 1);
            second.Archive.BytesScanned.ShouldBeInRange(1, _totalBytes - 1);
        }
        else
        {
            second.Archive.FilesFromCache.ShouldBe(0);
            second.Archive.BytesScanned.ShouldBe(_totalBytes);
        }
        second.Tree.Entries.ShouldBe(first.Tree.Entries, new TreeEntryComparer());
        second.Archive.Pipeline.Packs.ShouldBe(0); // nothing new to store: it was all there
        await ShouldRestoreTheSourceAsync(second, ct);
        // The run succeeded, so the cache is sound again for the next one.
        (await _rig.BackupAsync(4 << 20, ct)).Archive.FilesFromCache.ShouldBe(FileCount);
    }

    [Fact]
    public async Task Files_removed_and_added_between_runs_leave_every_other_file_reused()
    {
        var ct = TestContext.Current.CancellationToken;
        await BackUpManySmallFilesAsync(ct);
        // Gone: a whole folder and single files; new: files and folders that sort before, between and after the old ones.
        Directory.Delete(Path.Combine(_rig.Source, "dir-05"), recursive: true);
        File.Delete(Path.Combine(_rig.Source, "dir-07", "file-0007.dat"));
        File.Delete(Path.Combine(_rig.Source, "dir-19", "file-1999.dat"));
        foreach (var added in new[] { "a-first.dat", "dir-00/aaa.dat", "dir-07/file-0007x.dat", "dir-10/new/deep.dat", "zz/last.dat" })
            _rig.Write(added, [1, 2, 3]);

        var second = await _rig.BackupAsync(4 << 20, ct);

        var kept = FileCount - FileCount / 20 - 2;
        second.Archive.Files.ShouldBe(kept + 5);
        second.Archive.FilesFromCache.ShouldBe(kept);
        second.Archive.BytesScanned.ShouldBe(15);
        await ShouldRestoreTheSourceAsync(second, ct);
        (await _rig.BackupAsync(4 << 20, ct)).Archive.FilesFromCache.ShouldBe(kept + 5);
    }

    [Fact]
    public async Task Damaged_chunk_id_in_the_cache_makes_that_file_be_read_rather_than_trusted()
    {
        var ct = TestContext.Current.CancellationToken;
        await BackUpManySmallFilesAsync(ct);
        var bytes = await File.ReadAllBytesAsync(_rig.CachePath, ct);
        bytes[^1] ^= 0x01; // the last byte of the last file's last chunk id
        await File.WriteAllBytesAsync(_rig.CachePath, bytes, ct);

        var second = await _rig.BackupAsync(4 << 20, ct);

        second.Archive.FilesFromCache.ShouldBe(FileCount - 1);
        second.Archive.Referenced.ShouldAllBe(id => _rig.Index.ContainsKey(id));
        await ShouldRestoreTheSourceAsync(second, ct);
    }

    [Fact]
    public async Task Cache_is_not_used_for_chunks_the_server_no_longer_holds()
    {
        var ct = TestContext.Current.CancellationToken;
        var first = await BackUpManySmallFilesAsync(ct);
        // As if the server had pruned the chunk: the index no longer lists it, so the agent must store it again.
        var pruned = ChunkId.Parse(first.Entry("dir-00/file-0000.dat").Chunks!.Single());
        _rig.Index.Remove(pruned);

        var second = await _rig.BackupAsync(4 << 20, ct);

        second.Archive.FilesFromCache.ShouldBe(FileCount - 1);
        second.Archive.Pipeline.ChunksNew.ShouldBe(1 + second.Archive.TreeChunks.Count(c => !first.Archive.TreeChunks.Contains(c)));
        _rig.Index.ShouldContainKey(pruned);
        await ShouldRestoreTheSourceAsync(second, ct);
    }

    /// <summary>Tree entries compared by value, chunk lists included.</summary>
    private sealed class TreeEntryComparer : IEqualityComparer<Backup.Storage.Format.TreeEntry>
    {
        public bool Equals(Backup.Storage.Format.TreeEntry? a, Backup.Storage.Format.TreeEntry? b) =>
            a is not null && b is not null && (a with { Chunks = null }) == (b with { Chunks = null }) && (a.Chunks ?? []).SequenceEqual(b.Chunks ?? []);

        public int GetHashCode(Backup.Storage.Format.TreeEntry e) => e.Path.GetHashCode(StringComparison.Ordinal);
    }
}
