using System.Runtime.Versioning;
using Backup.Agent.BackingUp;
using Backup.Storage.Format;

namespace Backup.UnitTests.Engine;

/// <summary>
/// The agent sends the item catalog only what changed since its last committed backup: the changes it computes from its
/// snapshot and the new tree must be exactly the difference of the two item lists, whatever the folder layout, and a snapshot
/// it cannot trust must give no changes at all (every item is sent then).
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class ItemSnapshotTests : IDisposable
{
    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private string SnapshotPath => ItemSnapshot.PathFor(_rig.CachePath);

    /// <summary>Names that sort differently by whole path than name by name ('-' and '.' sort before '/'), nested folders, a symlink.</summary>
    private void WriteAwkwardTree()
    {
        foreach (var path in new[] { "a/x.txt", "a-b/y.txt", "a.b", "a/b/c/deep.txt", "a/b-c/z.txt", "A/upper.txt", "b/1.txt", "b/10.txt", "b/2.txt", "top.txt" })
            _rig.Write(path, [1, 2, 3]);
        Directory.CreateDirectory(Path.Combine(_rig.Source, "empty"));
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "a", "link"), "x.txt");
    }

    [Fact]
    public async Task The_archivers_tree_is_in_walk_order()
    {
        WriteAwkwardTree();
        var run = await _rig.BackupAsync(4 << 20, TestContext.Current.CancellationToken);
        var paths = run.Tree.Entries.Select(e => e.Path).ToList();
        paths.Count.ShouldBe(19); // 8 folders, 10 files, a symlink
        for (var i = 1; i < paths.Count; i++)
            WalkOrder.Compare(paths[i - 1], paths[i]).ShouldBeLessThan(0, $"{paths[i - 1]} before {paths[i]}");
        // Whole-path ordinal order would differ ('a-b' < 'a.b' < 'a/…'): the comparison is by folder, then name.
        paths.ShouldNotBe(paths.Order(StringComparer.Ordinal).ToList());
    }

    [Fact]
    public async Task The_changes_are_exactly_what_was_added_changed_and_removed()
    {
        var ct = TestContext.Current.CancellationToken;
        WriteAwkwardTree();
        var first = await _rig.BackupAsync(4 << 20, ct);
        var basePoint = Guid.NewGuid();
        ItemSnapshot.Save(SnapshotPath, basePoint, first.Tree.Entries);

        _rig.Write("a/b/c/deep.txt", [1, 2, 3, 4]); // changed size
        File.SetLastWriteTimeUtc(Path.Combine(_rig.Source, "b", "10.txt"), new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc)); // changed mtime
        File.Delete(Path.Combine(_rig.Source, "a.b"));
        Directory.CreateDirectory(Path.Combine(_rig.Source, "a.b")); // a folder where a file was: changed kind
        Directory.Delete(Path.Combine(_rig.Source, "a-b"), recursive: true); // a folder and its file gone
        _rig.Write("a/b/new.txt", [9]); // added, inside a kept folder
        _rig.Write("zz/new/deeper.txt", [9]); // added, in new folders
        var second = await _rig.BackupAsync(4 << 20, ct);

        var changes = ItemSnapshot.Changes(SnapshotPath, second.Tree.Entries, out var problem).ShouldNotBeNull();
        problem.ShouldBeNull();
        changes.Base.ShouldBe(basePoint);

        // The same as a plain comparison of the two lists by path.
        var before = first.Tree.Entries.ToDictionary(e => e.Path);
        var after = second.Tree.Entries.ToDictionary(e => e.Path);
        bool Same(TreeEntry a, TreeEntry b) => a.Kind == b.Kind && a.Size == b.Size && a.MtimeUtcTicks == b.MtimeUtcTicks;
        var expectedAdded = after.Values.Where(e => !before.TryGetValue(e.Path, out var was) || !Same(was, e)).Select(e => e.Path).Order().ToList();
        var expectedRemoved = before.Values.Where(e => !after.TryGetValue(e.Path, out var now) || !Same(e, now)).Select(e => e.Path).Order().ToList();
        changes.Added.Select(e => e.Path).Order().ShouldBe(expectedAdded);
        changes.Removed.Order().ShouldBe(expectedRemoved);
        foreach (var path in new[] { "a.b", "a/b", "a/b/c/deep.txt", "a/b/new.txt", "b/10.txt", "zz", "zz/new", "zz/new/deeper.txt" }) expectedAdded.ShouldContain(path);
        foreach (var path in new[] { "a-b", "a-b/y.txt", "a.b", "a/b/c/deep.txt", "b/10.txt" }) expectedRemoved.ShouldContain(path);
        foreach (var path in new[] { "top.txt", "A/upper.txt", "a/link", "b/1.txt" }) expectedAdded.Concat(expectedRemoved).ShouldNotContain(path);
        var deep = changes.Added.Single(e => e.Path == "a/b/c/deep.txt");
        (deep.Kind, deep.Size, deep.ModifiedAt.UtcTicks).ShouldBe((EntryKind.File, 4L, after["a/b/c/deep.txt"].MtimeUtcTicks));
        changes.Added.Single(e => e.Path == "a.b").Kind.ShouldBe(EntryKind.Directory);
    }

    [Fact]
    public async Task An_unchanged_tree_has_no_changes()
    {
        WriteAwkwardTree();
        var run = await _rig.BackupAsync(4 << 20, TestContext.Current.CancellationToken);
        ItemSnapshot.Save(SnapshotPath, Guid.NewGuid(), run.Tree.Entries);

        var changes = ItemSnapshot.Changes(SnapshotPath, run.Tree.Entries, out _).ShouldNotBeNull();
        changes.Added.ShouldBeEmpty();
        changes.Removed.ShouldBeEmpty();
    }

    [Fact]
    public void Without_a_snapshot_there_are_no_changes_and_no_complaint()
    {
        ItemSnapshot.Changes(SnapshotPath, [new TreeEntry("a", EntryKind.File, 1, 420, 0)], out var problem).ShouldBeNull();
        problem.ShouldBeNull();
    }

    [Theory]
    [InlineData("not a snapshot at all")]
    [InlineData("truncated")]
    [InlineData("out of order")]
    public void A_snapshot_that_cannot_be_trusted_gives_no_changes_and_says_why(string damage)
    {
        TreeEntry[] entries = [new("a", EntryKind.File, 1, 420, 0), new("b", EntryKind.File, 1, 420, 0), new("c", EntryKind.File, 1, 420, 0)];
        ItemSnapshot.Save(SnapshotPath, Guid.NewGuid(), damage == "out of order" ? [entries[1], entries[0], entries[2]] : entries);
        var bytes = File.ReadAllBytes(SnapshotPath);
        if (damage == "not a snapshot at all") File.WriteAllText(SnapshotPath, damage);
        if (damage == "truncated") File.WriteAllBytes(SnapshotPath, bytes[..^5]);

        ItemSnapshot.Changes(SnapshotPath, entries, out var problem).ShouldBeNull();
        problem.ShouldNotBeNull().ShouldContain("every item is sent");
    }

    [Fact]
    public void A_tree_out_of_walk_order_gives_no_changes()
    {
        TreeEntry[] entries = [new("a", EntryKind.File, 1, 420, 0), new("b", EntryKind.File, 1, 420, 0)];
        ItemSnapshot.Save(SnapshotPath, Guid.NewGuid(), entries);
        ItemSnapshot.Changes(SnapshotPath, [entries[1], entries[0]], out var problem).ShouldBeNull();
        problem.ShouldNotBeNull();
    }

    [Theory]
    [InlineData("a", "b", -1)]
    [InlineData("z", "a/b", -1)] // the root's items before any folder's
    [InlineData("a/z", "a-b/a", -1)] // folder 'a' before folder 'a-b', though 'a/' > 'a-' as text
    [InlineData("a/b", "a/b/c", -1)] // an item before the items inside it
    [InlineData("a/z", "a/b/c", -1)] // a folder's items before its subfolders' items
    [InlineData("a/b/c", "a/b/c", 0)]
    [InlineData("b/1", "a/9", 1)]
    public void Walk_order_compares_folder_by_folder_then_names(string a, string b, int sign)
    {
        Math.Sign(WalkOrder.Compare(a, b)).ShouldBe(sign);
        Math.Sign(WalkOrder.Compare(b, a)).ShouldBe(-sign);
    }
}
