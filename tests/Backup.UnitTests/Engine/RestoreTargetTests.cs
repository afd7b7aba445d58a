using System.Runtime.Versioning;

namespace Backup.UnitTests.Engine;

/// <summary>Restoring into a folder that already holds something: a retried restore, or stale files of the same names.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class RestoreTargetTests : IDisposable
{
    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private void BuildTree()
    {
        var t0 = new DateTime(2019, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(42);
        _rig.Write("readonly.txt", "original"u8.ToArray(), UnixFileMode.UserRead | UnixFileMode.GroupRead, t0);
        _rig.Write("d/b.txt", "inner"u8.ToArray(), UnixFileMode.UserRead | UnixFileMode.UserWrite, t0.AddHours(1));
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "link"), "readonly.txt");
        Directory.CreateSymbolicLink(Path.Combine(_rig.Source, "dirlink"), "d");
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "dangling"), "nowhere");
        Directory.SetLastWriteTimeUtc(Path.Combine(_rig.Source, "d"), t0.AddHours(2));
    }

    [Fact]
    public async Task Restoring_twice_into_the_same_folder_gives_the_same_tree()
    {
        var ct = TestContext.Current.CancellationToken;
        BuildTree();
        var result = await _rig.BackupAsync(1 << 20, ct);
        var target = _rig.NewTarget();

        await _rig.RestoreAsync(result.Manifest, target, ct);
        await _rig.RestoreAsync(result.Manifest, target, ct);

        TreeSnapshot.Of(target).Values.ShouldBe(TreeSnapshot.Of(_rig.Source).Values);
    }

    [Fact]
    public async Task Stale_files_with_the_same_names_are_replaced_by_the_backed_up_content()
    {
        var ct = TestContext.Current.CancellationToken;
        BuildTree();
        var result = await _rig.BackupAsync(1 << 20, ct);
        var target = _rig.NewTarget();
        Directory.CreateDirectory(Path.Combine(target, "d"));
        await File.WriteAllTextAsync(Path.Combine(target, "readonly.txt"), "stale and much longer than the original", ct);
        await File.WriteAllTextAsync(Path.Combine(target, "d", "b.txt"), "stale", ct);
        await File.WriteAllTextAsync(Path.Combine(target, "link"), "a file where the link belongs", ct);

        await _rig.RestoreAsync(result.Manifest, target, ct);

        TreeSnapshot.Of(target).Values.ShouldBe(TreeSnapshot.Of(_rig.Source).Values);
    }

    // Regression: a target ending in a separator used to make every entry "escape the restore target".
    [Fact]
    public async Task Temporaries_left_by_an_interrupted_restore_do_not_leak_into_the_restored_files()
    {
        var ct = TestContext.Current.CancellationToken;
        // Zeros between two stretches of data: the zeros are a hole the restore never writes, so whatever an old temporary held
        // there would show through if the temporary were reused rather than emptied.
        var content = new byte[20 << 20];
        Random.Shared.NextBytes(content.AsSpan(0, 1 << 20));
        Random.Shared.NextBytes(content.AsSpan(content.Length - (1 << 20)));
        _rig.Write("disk.img", content);
        _rig.Write("small.txt", "small"u8.ToArray());
        var result = await _rig.BackupAsync(16 << 20, ct);
        var target = _rig.NewTarget();
        Directory.CreateDirectory(target);
        var leftover = new byte[content.Length + 4096];
        Array.Fill(leftover, (byte)0xEE);
        // What a restore killed mid-way (kill -9) leaves: its staging folder, with temporaries named by the files' positions.
        var staging = Directory.CreateDirectory(Path.Combine(target, ".restoring-0123456789ab")).FullName;
        File.WriteAllBytes(Path.Combine(staging, "0"), leftover);
        File.WriteAllBytes(Path.Combine(staging, "1"), leftover);
        var usersOwn = Directory.CreateDirectory(Path.Combine(target, ".restoring-photos")).FullName; // only looks like one
        File.WriteAllText(Path.Combine(usersOwn, "cat.jpg"), "the user's");

        await _rig.RestoreAsync(result.Manifest, target, ct);

        File.ReadAllBytes(Path.Combine(target, "disk.img")).ShouldBe(content);
        File.ReadAllBytes(Path.Combine(target, "small.txt")).ShouldBe("small"u8.ToArray());
        Directory.EnumerateFileSystemEntries(target).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList().ShouldBe([".restoring-photos", "disk.img", "small.txt"]);
        File.ReadAllText(Path.Combine(usersOwn, "cat.jpg")).ShouldBe("the user's");
    }

    [Fact]
    public async Task Target_path_with_a_trailing_separator_restores_the_tree()
    {
        var ct = TestContext.Current.CancellationToken;
        BuildTree();
        var result = await _rig.BackupAsync(1 << 20, ct);
        var target = _rig.NewTarget();

        var restored = await _rig.RestoreAsync(result.Manifest, target + Path.DirectorySeparatorChar, ct);

        restored.Files.ShouldBe(2);
        TreeSnapshot.Of(target).Values.ShouldBe(TreeSnapshot.Of(_rig.Source).Values);
    }
}
