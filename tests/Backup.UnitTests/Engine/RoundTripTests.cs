using System.Runtime.Versioning;
using System.Text;
using Backup.Agent.BackingUp;
using Backup.Agent.Restoring;
using Backup.Storage.Crypto;
using Backup.Storage.Format;

namespace Backup.UnitTests.Engine;

/// <summary>
/// Backs up a folder holding everything a real folder holds (nested and empty directories, an empty file,
/// a file spanning many packs, non-ASCII names, odd permissions, symlinks), restores it elsewhere, and
/// compares the two trees once for all the tests of this class.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class RoundTripFixture : IAsyncLifetime
{
    public const long PackTarget = 4 << 20;
    public const int BigFileBytes = 40 << 20;

    private readonly BackupRig _rig = new();

    public BackupRun Run { get; private set; } = null!;
    public ArchiveResult Archive => Run.Archive;
    public IReadOnlyDictionary<ChunkId, ChunkLocation> Index { get; private set; } = null!;
    public RestoreResult Restored { get; private set; } = null!;
    public IReadOnlyDictionary<string, TreeItem> Original { get; private set; } = null!;
    public IReadOnlyDictionary<string, TreeItem> Copy { get; private set; } = null!;
    public string[] BackupScratchLeftovers { get; private set; } = [];
    public string[] RestoreScratchLeftovers { get; private set; } = [];
    public string Target { get; private set; } = "";
    public string[] StoredPacks { get; private set; } = [];

    public async ValueTask InitializeAsync()
    {
        var ct = TestContext.Current.CancellationToken;
        BuildTree();
        Original = TreeSnapshot.Of(_rig.Source);

        Run = await _rig.BackupAsync(PackTarget, ct);
        BackupScratchLeftovers = Directory.GetFiles(_rig.BackupScratch);
        StoredPacks = _rig.StoredPacks();
        Index = _rig.IndexFor(Run.Manifest);

        Target = _rig.NewTarget();
        Restored = await _rig.RestoreAsync(Run.Manifest, Target, ct);
        RestoreScratchLeftovers = Directory.GetFiles(_rig.RestoreScratch);
        Copy = TreeSnapshot.Of(Target);
    }

    private void BuildTree()
    {
        var t0 = new DateTime(2021, 5, 6, 7, 8, 9, DateTimeKind.Utc).AddTicks(1_234_567);
        const UnixFileMode rw_r__r__ = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        const UnixFileMode rwxr_xr_x = rw_r__r__ | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        const UnixFileMode r__r__r__ = UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        var random = new Random(20250314);
        byte[] Bytes(int n) { var b = new byte[n]; random.NextBytes(b); return b; }

        _rig.Write("a.txt", "hello, world\n"u8.ToArray(), rw_r__r__, t0);
        _rig.Write("empty.bin", [], rw_r__r__, t0.AddDays(1));
        _rig.Write("big.bin", Bytes(BigFileBytes), UnixFileMode.UserRead | UnixFileMode.UserWrite, t0.AddDays(2));
        _rig.Write("ß-名字.txt", Encoding.UTF8.GetBytes("grüße, 名字\n"), rw_r__r__, t0.AddDays(3));
        _rig.Write("script.sh", "#!/bin/sh\necho hi\n"u8.ToArray(), rwxr_xr_x, t0.AddDays(4));
        _rig.Write("readonly.txt", "do not touch"u8.ToArray(), r__r__r__, t0.AddDays(5));
        _rig.Write("nested/small-1.txt", Bytes(1), rw_r__r__, t0.AddHours(1));
        _rig.Write("nested/small-2.txt", Bytes(4095), rw_r__r__, t0.AddHours(2));
        _rig.Write("nested/deeper/deepest/x.dat", Bytes(70_000), rw_r__r__, t0.AddHours(3));
        _rig.Write("nested/deeper/日本語フォルダ/ñ.txt", Bytes(10), rw_r__r__, t0.AddHours(4));
        _rig.Write("sealed/inside.txt", Bytes(100), rw_r__r__, t0.AddHours(5));
        _rig.Write("private/secret.txt", Bytes(33), UnixFileMode.UserRead | UnixFileMode.UserWrite, t0.AddHours(6));
        Directory.CreateDirectory(Path.Combine(_rig.Source, "emptydir"));
        Directory.CreateDirectory(Path.Combine(_rig.Source, "nested", "empty-inner"));

        File.CreateSymbolicLink(Path.Combine(_rig.Source, "link-to-a"), "a.txt");
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "nested", "link-up"), "../ß-名字.txt");
        Directory.CreateSymbolicLink(Path.Combine(_rig.Source, "link-to-nested"), "nested");
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "dangling"), "no/such/file");
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "absolute"), "/etc/hostname");

        // Directory times and modes last, deepest first: adding entries changes a directory's mtime.
        var directories = Directory.GetDirectories(_rig.Source, "*", SearchOption.AllDirectories)
            .Where(d => new DirectoryInfo(d).LinkTarget is null)
            .OrderByDescending(d => d.Length).ToList();
        var i = 0;
        foreach (var dir in directories) Directory.SetLastWriteTimeUtc(dir, t0.AddMinutes(++i).AddTicks(i * 7));
        File.SetUnixFileMode(Path.Combine(_rig.Source, "emptydir"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        File.SetUnixFileMode(Path.Combine(_rig.Source, "private"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(Path.Combine(_rig.Source, "sealed"), UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
    }

    public ValueTask DisposeAsync()
    {
        _rig.Dispose();
        return ValueTask.CompletedTask;
    }
}

[UnsupportedOSPlatform("windows")]
public sealed class RoundTripTests(RoundTripFixture f) : IClassFixture<RoundTripFixture>
{
    private IEnumerable<TreeItem> Originals(string kind) => f.Original.Values.Where(i => i.Kind == kind);

    [Fact]
    public void Restored_tree_has_exactly_the_original_items()
    {
        f.Copy.Keys.ShouldBe(f.Original.Keys);
        foreach (var (path, item) in f.Original) f.Copy[path].Kind.ShouldBe(item.Kind, path);
    }

    [Fact]
    public void Every_file_is_restored_byte_for_byte()
    {
        foreach (var original in Originals("file"))
        {
            var copy = f.Copy[original.Path];
            copy.Size.ShouldBe(original.Size, original.Path);
            copy.Sha256.ShouldBe(original.Sha256, original.Path);
        }
    }

    [Fact]
    public void Every_file_and_directory_gets_its_permissions_back()
    {
        foreach (var original in f.Original.Values.Where(i => i.Kind != "symlink"))
            f.Copy[original.Path].Mode.ShouldBe(original.Mode, original.Path);
    }

    [Fact]
    public void Every_file_and_directory_gets_its_modification_time_back_to_the_tick()
    {
        foreach (var original in f.Original.Values.Where(i => i.Kind != "symlink"))
            f.Copy[original.Path].MtimeUtc.ShouldBe(original.MtimeUtc, original.Path);
    }

    [Fact]
    public void Symlinks_are_restored_as_links_to_the_same_target_not_followed()
    {
        Originals("symlink").Count().ShouldBe(5);
        foreach (var original in Originals("symlink"))
            f.Copy[original.Path].LinkTarget.ShouldBe(original.LinkTarget, original.Path);
        f.Archive.Tree.Entries.ShouldNotContain(e => e.Path.StartsWith("link-to-nested/", StringComparison.Ordinal));
    }

    [Fact]
    public void Empty_directories_and_empty_files_are_restored()
    {
        Directory.Exists(Path.Combine(f.Target, "emptydir")).ShouldBeTrue();
        Directory.GetFileSystemEntries(Path.Combine(f.Target, "emptydir")).ShouldBeEmpty();
        Directory.Exists(Path.Combine(f.Target, "nested", "empty-inner")).ShouldBeTrue();
        new FileInfo(Path.Combine(f.Target, "empty.bin")).Length.ShouldBe(0);
    }

    [Fact]
    public void Non_ascii_names_survive()
    {
        File.ReadAllText(Path.Combine(f.Target, "ß-名字.txt")).ShouldBe("grüße, 名字\n");
        File.Exists(Path.Combine(f.Target, "nested", "deeper", "日本語フォルダ", "ñ.txt")).ShouldBeTrue();
    }

    [Fact]
    public void Archive_counts_match_the_tree()
    {
        f.Archive.Files.ShouldBe(Originals("file").Count());
        f.Archive.Directories.ShouldBe(Originals("directory").Count());
        f.Archive.BytesRead.ShouldBe(Originals("file").Sum(i => i.Size));
        f.Restored.Files.ShouldBe(f.Archive.Files);
        f.Restored.Bytes.ShouldBe(f.Archive.BytesRead);
        f.Archive.Tree.Skipped.ShouldBeEmpty();
        f.Archive.Tree.Validate().ShouldBeEmpty();
        f.Run.Manifest.Validate().ShouldBeEmpty();
    }

    [Fact]
    public void Large_file_is_cut_into_chunks_spread_over_many_packs_that_add_up_to_its_size()
    {
        var big = f.Run.Entry("big.bin");

        var chunks = big.Chunks.ShouldNotBeNull().Select(ChunkId.Parse).ToList();
        chunks.Count.ShouldBeGreaterThan(RoundTripFixture.BigFileBytes / Pack.MaxPlainLength);
        chunks.Sum(c => (long)f.Index[c].PlainLength).ShouldBe(RoundTripFixture.BigFileBytes);
        // A pack is sealed once it reaches the target, so it holds at most the target plus one blob.
        chunks.Select(c => f.Index[c].PackId).Distinct().Count()
            .ShouldBeGreaterThanOrEqualTo(RoundTripFixture.BigFileBytes / (int)(RoundTripFixture.PackTarget + Pack.MaxBlobLength));
    }

    [Fact]
    public void Tree_is_stored_as_chunks_and_the_manifest_names_no_file_names()
    {
        f.Run.Manifest.Tree.ShouldBe(f.Archive.TreeChunks.Select(c => c.ToString()));
        var json = System.Text.Encoding.UTF8.GetString(f.Run.Manifest.ToBytes());
        json.ShouldNotContain("big.bin");
        json.ShouldNotContain("a.txt");
        // Random file data does not compress, so the packs hold about as many bytes as the files (plus a little overhead).
        f.Archive.Pipeline.PlainBytesNew.ShouldBeGreaterThanOrEqualTo(f.Archive.BytesRead);
    }

    [Fact]
    public void Every_pack_the_manifest_names_is_in_the_store_and_nothing_else()
    {
        f.StoredPacks.Order(StringComparer.Ordinal).ShouldBe(f.Run.Manifest.PackIds().Order(StringComparer.Ordinal));
        f.Archive.Pipeline.Packs.ShouldBe(f.StoredPacks.Length);
    }

    [Fact]
    public void Scratch_space_is_left_empty_by_backup_and_restore()
    {
        f.BackupScratchLeftovers.ShouldBeEmpty();
        f.RestoreScratchLeftovers.ShouldBeEmpty();
    }

    [Fact]
    public void Manifest_of_a_real_backup_survives_serialisation()
    {
        var copy = Manifest.FromBytes(f.Run.Manifest.ToBytes());

        copy.Sha256().ShouldBe(f.Run.Manifest.Sha256());
        copy.Validate().ShouldBeEmpty();
        Tree.FromBytes(f.Archive.Tree.ToBytes()).ToBytes().ShouldBe(f.Archive.Tree.ToBytes());
    }
}
