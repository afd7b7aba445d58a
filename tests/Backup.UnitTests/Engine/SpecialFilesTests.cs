using System.Net.Sockets;
using System.Runtime.Versioning;

namespace Backup.UnitTests.Engine;

[UnsupportedOSPlatform("windows")]
public sealed class SpecialFilesTests : IDisposable
{
    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task Fifo_and_socket_are_skipped_with_a_reason_without_hanging_the_backup()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.txt", "before"u8.ToArray());
        BackupRig.MakeFifo(Path.Combine(_rig.Source, "pipe"));
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(_rig.Source, "sock")));
        _rig.Write("z.txt", "after"u8.ToArray());

        // Opening a fifo blocks the calling thread, so run the whole backup off this one and give up after a while.
        var result = await Task.Run(() => _rig.BackupAsync(1 << 20, ct), ct).WaitAsync(TimeSpan.FromSeconds(15), ct);

        var skipped = result.Tree.Skipped.ShouldNotBeNull();
        skipped.Select(s => s.Path).Order(StringComparer.Ordinal).ShouldBe(["pipe", "sock"]);
        skipped.ShouldAllBe(s => s.Reason.Contains("fifo", StringComparison.OrdinalIgnoreCase));
        result.Tree.Entries.Select(e => e.Path).ShouldBe(["a.txt", "z.txt"]);
        result.Archive.Files.ShouldBe(2);

        var target = _rig.NewTarget();
        await _rig.RestoreAsync(result.Manifest, target, ct);
        Directory.GetFileSystemEntries(target).Select(Path.GetFileName).Order(StringComparer.Ordinal).ShouldBe(["a.txt", "z.txt"]);
        File.ReadAllText(Path.Combine(target, "z.txt")).ShouldBe("after");
    }

    [Fact]
    public async Task Missing_source_folder_fails_the_backup()
    {
        var ct = TestContext.Current.CancellationToken;
        Directory.Delete(_rig.Source);

        await Should.ThrowAsync<DirectoryNotFoundException>(() => _rig.BackupAsync(1 << 20, ct));
    }

    [Fact]
    public async Task Empty_folder_backs_up_to_an_empty_tree_in_one_pack()
    {
        var ct = TestContext.Current.CancellationToken;

        var result = await _rig.BackupAsync(1 << 20, ct);

        result.Tree.Entries.ShouldBeEmpty();
        // The (empty) tree itself is a chunk, so even an empty folder has a recovery point to restore.
        result.Archive.Pipeline.Packs.ShouldBe(1);
        result.Manifest.Validate().ShouldBeEmpty();
        var target = _rig.NewTarget();
        (await _rig.RestoreAsync(result.Manifest, target, ct)).Files.ShouldBe(0);
        Directory.Exists(target).ShouldBeTrue();
    }
}
