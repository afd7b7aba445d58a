using System.Runtime.Versioning;

namespace Backup.UnitTests.Engine;

/// <summary>Hard links: one group per inode in the tree, and a restore that links where it can and copies where it cannot.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class HardLinkTests : IDisposable
{
    private readonly BackupRig _rig = new();
    private readonly List<string> _mounts = [];

    public void Dispose()
    {
        foreach (var mount in _mounts) BackupRig.Run("umount", mount);
        _rig.Dispose();
    }

    private static string Inode(string path) => BackupRig.Run("stat", "-c", "%i", path).Trim();

    [Fact]
    public async Task A_file_whose_other_name_is_outside_the_protected_folder_is_a_plain_file_in_the_tree()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.txt", "a"u8.ToArray());
        _rig.Write("b.txt", "b"u8.ToArray());
        BackupRig.Run("ln", Path.Combine(_rig.Source, "a.txt"), Path.Combine(_rig.Source, "a-too.txt"));
        BackupRig.Run("ln", Path.Combine(_rig.Source, "b.txt"), Path.Combine(_rig.BackupScratch, "b-elsewhere.txt"));

        var run = await _rig.BackupAsync(1 << 20, ct);

        run.Entry("a.txt").LinkGroup.ShouldNotBeNull();
        run.Entry("a-too.txt").LinkGroup.ShouldBe(run.Entry("a.txt").LinkGroup);
        run.Entry("b.txt").LinkGroup.ShouldBeNull();
    }

    [Fact]
    public async Task A_member_on_another_file_system_under_the_target_gets_a_copy_and_the_others_are_linked()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("data.txt", "one inode, three names\n"u8.ToArray());
        Directory.CreateDirectory(Path.Combine(_rig.Source, "other"));
        BackupRig.Run("ln", Path.Combine(_rig.Source, "data.txt"), Path.Combine(_rig.Source, "other", "alias.txt"));
        BackupRig.Run("ln", Path.Combine(_rig.Source, "data.txt"), Path.Combine(_rig.Source, "third.txt"));
        var run = await _rig.BackupAsync(1 << 20, ct);
        // A folder of the target that is a mount point of its own: no link can cross into it (EXDEV).
        var target = _rig.NewTarget();
        var mount = Directory.CreateDirectory(Path.Combine(target, "other")).FullName;
        var mounted = System.Diagnostics.Process.Start("mount", ["-t", "tmpfs", "tmpfs", mount]);
        await mounted.WaitForExitAsync(ct);
        Assert.SkipUnless(mounted.ExitCode == 0, "mounting a tmpfs needs root (CAP_SYS_ADMIN)");
        _mounts.Add(mount);

        var result = await _rig.RestoreAsync(run.Manifest, target, ct);

        (result.Failed ?? []).ShouldBeEmpty();
        result.Files.ShouldBe(3);
        Inode(Path.Combine(target, "third.txt")).ShouldBe(Inode(Path.Combine(target, "data.txt")));
        File.ReadAllText(Path.Combine(target, "other", "alias.txt")).ShouldBe("one inode, three names\n");
    }
}
