using System.Runtime.Versioning;
using Backup.Agent.Restoring;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.UnitTests.Engine;

/// <summary>Item-level restore and Azure Backup's choices for items that already exist: overwrite, skip, keep both.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class RestoreOptionsTests : IDisposable
{
    private readonly BackupRig _rig = new();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _rig.Dispose();

    private async Task<Manifest> BackUpTreeAsync()
    {
        _rig.Write("docs/2026/report.txt", "report v1"u8.ToArray());
        _rig.Write("docs/2026/notes/n1.txt", "note one"u8.ToArray());
        _rig.Write("docs/readme.md", "readme"u8.ToArray());
        _rig.Write("photos/cat.jpg", new byte[70_000]);
        return (await _rig.BackupAsync(1 << 20, Ct)).Manifest;
    }

    private static List<string> Files(string root) => Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
        .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToList();

    [Fact]
    public async Task Selected_items_are_restored_with_everything_under_a_selected_directory_and_nothing_else()
    {
        var manifest = await BackUpTreeAsync();
        var target = _rig.NewTarget();

        var result = await _rig.RestoreAsync(manifest, target, new RestoreOptions(["docs/2026", "photos/cat.jpg"]), Ct);

        Files(target).ShouldBe(["docs/2026/notes/n1.txt", "docs/2026/report.txt", "photos/cat.jpg"]);
        result.Files.ShouldBe(3);
        File.ReadAllText(Path.Combine(target, "docs/2026/report.txt")).ShouldBe("report v1");
        // The parent directory keeps its recorded mtime even though only part of it was restored.
        Directory.GetLastWriteTimeUtc(Path.Combine(target, "docs")).ShouldBe(Directory.GetLastWriteTimeUtc(Path.Combine(_rig.Source, "docs")));
    }

    [Fact]
    public async Task Selecting_an_item_that_is_not_in_the_recovery_point_fails_before_writing_anything()
    {
        var manifest = await BackUpTreeAsync();
        var target = _rig.NewTarget();

        var error = await Should.ThrowAsync<InvalidDataException>(() => _rig.RestoreAsync(manifest, target, new RestoreOptions(["docs/missing.txt"]), Ct));

        error.Message.ShouldContain("docs/missing.txt");
        Directory.Exists(target).ShouldBeFalse();
    }

    [Fact]
    public async Task Skip_leaves_existing_items_untouched_and_counts_them()
    {
        var manifest = await BackUpTreeAsync();
        var target = _rig.NewTarget();
        Directory.CreateDirectory(Path.Combine(target, "docs/2026"));
        File.WriteAllText(Path.Combine(target, "docs/2026/report.txt"), "edited since");

        var result = await _rig.RestoreAsync(manifest, target, new RestoreOptions(null, ExistingItems.Skip), Ct);

        File.ReadAllText(Path.Combine(target, "docs/2026/report.txt")).ShouldBe("edited since");
        File.ReadAllText(Path.Combine(target, "docs/readme.md")).ShouldBe("readme");
        result.SkippedExisting.ShouldBe(1);
        result.Files.ShouldBe(3);
    }

    [Fact]
    public async Task Keep_both_restores_beside_the_existing_item_under_a_new_name()
    {
        var manifest = await BackUpTreeAsync();
        var target = _rig.NewTarget();
        Directory.CreateDirectory(Path.Combine(target, "docs/2026"));
        File.WriteAllText(Path.Combine(target, "docs/2026/report.txt"), "edited since");
        File.WriteAllText(Path.Combine(target, "docs/2026/report (restored).txt"), "an earlier keep-both");

        await _rig.RestoreAsync(manifest, target, new RestoreOptions(["docs/2026/report.txt"], ExistingItems.KeepBoth), Ct);

        File.ReadAllText(Path.Combine(target, "docs/2026/report.txt")).ShouldBe("edited since");
        File.ReadAllText(Path.Combine(target, "docs/2026/report (restored).txt")).ShouldBe("an earlier keep-both");
        File.ReadAllText(Path.Combine(target, "docs/2026/report (restored 2).txt")).ShouldBe("report v1");
    }

    [Fact]
    public async Task Overwrite_replaces_existing_items_with_the_recovery_points_version()
    {
        var manifest = await BackUpTreeAsync();
        var target = _rig.NewTarget();
        Directory.CreateDirectory(Path.Combine(target, "docs/2026"));
        File.WriteAllText(Path.Combine(target, "docs/2026/report.txt"), "edited since, longer than the original");

        var result = await _rig.RestoreAsync(manifest, target, new RestoreOptions(null, ExistingItems.Overwrite), Ct);

        File.ReadAllText(Path.Combine(target, "docs/2026/report.txt")).ShouldBe("report v1");
        result.SkippedExisting.ShouldBe(0);
    }
}
