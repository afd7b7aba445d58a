using System.Runtime.Versioning;
using Backup.Storage.Filtering;
using Backup.Storage.Format;

namespace Backup.UnitTests.Engine;

/// <summary>Include and exclude patterns honoured by the archiver on a real folder, stored in a real disk store and restored.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class FilterTests : IDisposable
{
    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private void WriteTree()
    {
        _rig.Write("report.docx", "report"u8.ToArray());
        _rig.Write("notes.txt", "notes"u8.ToArray());
        _rig.Write("app.log", "log"u8.ToArray());
        _rig.Write("docs/2026/plan.docx", "plan"u8.ToArray());
        _rig.Write("docs/2026/plan.log", "plan log"u8.ToArray());
        _rig.Write("docs/readme.txt", "readme"u8.ToArray());
        _rig.Write("tmp/scratch.docx", "scratch"u8.ToArray());
        _rig.Write("photos/cat.jpg", "cat"u8.ToArray());
        _rig.Write("src/tmp/build.docx", "nested tmp"u8.ToArray());
        Directory.CreateDirectory(Path.Combine(_rig.Source, "empty"));
    }

    private static string[] Paths(BackupRun run) => run.Tree.Entries.Select(e => e.Path).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task Excluded_files_and_folders_are_out_of_the_recovery_point_not_skipped()
    {
        WriteTree();
        _rig.Filter = PathFilter.Create(null, ["*.log", "tmp/"]);

        var run = await _rig.BackupAsync(1 << 20, Ct);

        Paths(run).ShouldBe([
            "docs", "docs/2026", "docs/2026/plan.docx", "docs/readme.txt", "empty", "notes.txt", "photos", "photos/cat.jpg",
            "report.docx", "src",
        ]);
        (run.Tree.Skipped ?? []).ShouldBeEmpty();
        run.Archive.Files.ShouldBe(5);
        run.Archive.Directories.ShouldBe(5);

        var target = _rig.NewTarget();
        await _rig.RestoreAsync(run.Manifest, target, Ct);
        File.Exists(Path.Combine(target, "app.log")).ShouldBeFalse();
        Directory.Exists(Path.Combine(target, "tmp")).ShouldBeFalse();
        Directory.Exists(Path.Combine(target, "src", "tmp")).ShouldBeFalse();
        File.ReadAllText(Path.Combine(target, "docs", "2026", "plan.docx")).ShouldBe("plan");
    }

    [Fact]
    public async Task An_excluded_folder_is_not_entered_so_an_unreadable_one_is_not_even_a_skipped_item()
    {
        WriteTree();
        var locked = Path.Combine(_rig.Source, "tmp");
        File.SetUnixFileMode(locked, UnixFileMode.None);
        try
        {
            _rig.Filter = PathFilter.Create(null, ["tmp/"]);
            var run = await _rig.BackupAsync(1 << 20, Ct);

            (run.Tree.Skipped ?? []).ShouldBeEmpty();
            Paths(run).ShouldNotContain(p => p.StartsWith("tmp", StringComparison.Ordinal));
        }
        finally
        {
            File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Fact]
    public async Task With_include_patterns_only_matching_files_and_the_folders_holding_them_are_kept()
    {
        WriteTree();
        _rig.Filter = PathFilter.Create(["**/*.docx"], ["tmp/"]);

        var run = await _rig.BackupAsync(1 << 20, Ct);

        Paths(run).ShouldBe(["docs", "docs/2026", "docs/2026/plan.docx", "report.docx"]);
        run.Archive.Files.ShouldBe(2);
        run.Archive.Directories.ShouldBe(2);

        var target = _rig.NewTarget();
        await _rig.RestoreAsync(run.Manifest, target, Ct);
        TreeSnapshot.Of(target).Keys.ShouldBe(["docs", "docs/2026", "docs/2026/plan.docx", "report.docx"]);
    }

    [Fact]
    public async Task An_included_folder_brings_everything_in_it()
    {
        WriteTree();
        _rig.Filter = PathFilter.Create(["docs/", "notes.txt"], ["*.log"]);

        var run = await _rig.BackupAsync(1 << 20, Ct);

        Paths(run).ShouldBe(["docs", "docs/2026", "docs/2026/plan.docx", "docs/readme.txt", "notes.txt"]);
        run.Tree.Entries.Single(e => e.Path == "docs").Kind.ShouldBe(EntryKind.Directory);
    }

    [Fact]
    public async Task Without_patterns_everything_is_backed_up()
    {
        WriteTree();

        var run = await _rig.BackupAsync(1 << 20, Ct);

        run.Archive.Files.ShouldBe(9);
        Paths(run).ShouldContain("tmp/scratch.docx");
        Paths(run).ShouldContain("empty");
    }
}
