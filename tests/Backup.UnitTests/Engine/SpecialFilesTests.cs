using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using Backup.Storage.Format;

namespace Backup.UnitTests.Engine;

[UnsupportedOSPlatform("windows")]
public sealed partial class SpecialFilesTests : IDisposable
{
    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public async Task A_fifo_is_recorded_without_opening_it_and_restored_and_a_socket_is_skipped_with_a_reason()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.txt", "before"u8.ToArray());
        BackupRig.MakeFifo(Path.Combine(_rig.Source, "pipe"));
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(_rig.Source, "sock")));
        _rig.Write("z.txt", "after"u8.ToArray());

        // Opening a fifo blocks the calling thread, so run the whole backup off this one and give up after a while.
        var result = await Task.Run(() => _rig.BackupAsync(1 << 20, ct), ct).WaitAsync(TimeSpan.FromSeconds(15), ct);

        var skipped = result.Tree.Skipped.ShouldNotBeNull().ShouldHaveSingleItem();
        skipped.Path.ShouldBe("sock");
        skipped.Reason.ShouldContain("socket");
        result.Tree.Entries.Select(e => (e.Path, e.Kind)).ShouldBe([("a.txt", EntryKind.File), ("pipe", EntryKind.Fifo), ("z.txt", EntryKind.File)]);
        result.Archive.Files.ShouldBe(2);

        var target = _rig.NewTarget();
        await _rig.RestoreAsync(result.Manifest, target, ct);
        Directory.GetFileSystemEntries(target).Select(Path.GetFileName).Order(StringComparer.Ordinal).ShouldBe(["a.txt", "pipe", "z.txt"]);
        BackupRig.Run("stat", "-c", "%F", Path.Combine(target, "pipe")).Trim().ShouldBe("fifo");
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

    private static string[] Names(string folder) =>
        Directory.GetFileSystemEntries(folder).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task File_that_vanishes_after_the_folder_was_listed_is_skipped_with_a_reason_and_the_run_goes_on()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.txt", "a"u8.ToArray());
        var vanishing = _rig.Write("b.txt", "b"u8.ToArray());
        _rig.Write("c.txt", "c"u8.ToArray());

        // The archiver reports progress after each file; by then it has listed the folder, so b.txt is gone when it gets there.
        var result = await _rig.BackupAsync(1 << 20, _ => { }, useCache: true, (_, files) =>
        {
            if (files == 1) File.Delete(vanishing);
        }, ct);

        var skipped = result.Tree.Skipped.ShouldNotBeNull().ShouldHaveSingleItem();
        skipped.Path.ShouldBe("b.txt");
        skipped.Reason.ShouldContain("vanished");
        result.Tree.Entries.Select(e => e.Path).ShouldBe(["a.txt", "c.txt"]);
        var target = _rig.NewTarget();
        await _rig.RestoreAsync(result.Manifest, target, ct);
        Names(target).ShouldBe(["a.txt", "c.txt"]);
    }

    [Fact]
    public async Task File_replaced_by_a_dangling_symlink_after_listing_is_recorded_as_that_symlink_not_followed()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.txt", "a"u8.ToArray());
        var replaced = _rig.Write("b.txt", "b"u8.ToArray());
        _rig.Write("c.txt", "c"u8.ToArray());

        var result = await _rig.BackupAsync(1 << 20, _ => { }, useCache: true, (_, files) =>
        {
            if (files != 1) return;
            File.Delete(replaced);
            File.CreateSymbolicLink(replaced, "/nonexistent/elsewhere");
        }, ct);

        result.Tree.Skipped.ShouldBeEmpty();
        var b = result.Entry("b.txt");
        (b.Kind, b.LinkTarget, b.Chunks).ShouldBe((EntryKind.Symlink, "/nonexistent/elsewhere", null));
        result.Archive.Files.ShouldBe(2);
        var target = _rig.NewTarget();
        await _rig.RestoreAsync(result.Manifest, target, ct);
        new FileInfo(Path.Combine(target, "b.txt")).LinkTarget.ShouldBe("/nonexistent/elsewhere");
    }

    // Root reads any file whatever its mode, so there the same tree proves the other half: a mode-000 file is backed up
    // and gets its mode back. As any other user it cannot be read and must be skipped with the reason.
    [Fact]
    public async Task Unreadable_file_is_skipped_with_the_reason_or_for_root_backed_up_with_its_mode()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.txt", "a"u8.ToArray());
        _rig.Write("locked.txt", "secret"u8.ToArray(), UnixFileMode.None);
        _rig.Write("z.txt", "z"u8.ToArray());

        var result = await _rig.BackupAsync(1 << 20, ct);

        var target = _rig.NewTarget();
        await _rig.RestoreAsync(result.Manifest, target, ct);
        if (GetEuid() == 0)
        {
            result.Tree.Skipped.ShouldBeEmpty();
            result.Entry("locked.txt").Mode.ShouldBe(0);
            File.GetUnixFileMode(Path.Combine(target, "locked.txt")).ShouldBe(UnixFileMode.None);
            File.ReadAllText(Path.Combine(target, "locked.txt")).ShouldBe("secret");
            Names(target).ShouldBe(["a.txt", "locked.txt", "z.txt"]);
        }
        else
        {
            var skipped = result.Tree.Skipped.ShouldNotBeNull().ShouldHaveSingleItem();
            skipped.Path.ShouldBe("locked.txt");
            skipped.Reason.ShouldContain("denied", Case.Insensitive);
            Names(target).ShouldBe(["a.txt", "z.txt"]);
        }
    }

    [Fact]
    public async Task Names_and_link_targets_that_are_not_valid_utf8_are_kept_escaped_and_restored_byte_for_byte()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("good.txt", "good"u8.ToArray());
        // .NET cannot create such names, so let Python write the raw bytes: a file, a directory holding a file, a symlink to it.
        BackupRig.Run("python3", "-c",
            "import os, sys; d = os.fsencode(sys.argv[1]); open(d + b'/bad\\xff.txt', 'w').write('x'); "
            + "os.mkdir(d + b'/dir\\xfe'); open(d + b'/dir\\xfe/inner.txt', 'w').write('y'); os.symlink(b'bad\\xff.txt', d + b'/link')",
            _rig.Source);
        Directory.GetFileSystemEntries(_rig.Source).Length.ShouldBe(4);

        var result = await _rig.BackupAsync(1 << 20, ct);

        result.Tree.Skipped.ShouldBeEmpty();
        result.Tree.Entries.Select(e => (e.Path, e.LinkTarget)).ShouldBe(
            [("bad\uFFFDFF.txt", null), ("dir\uFFFDFE", null), ("good.txt", null), ("link", "bad\uFFFDFF.txt"), ("dir\uFFFDFE/inner.txt", null)]);
        var target = _rig.NewTarget();
        await _rig.RestoreAsync(result.Manifest, target, ct);
        BackupRig.Run("python3", "-c",
            "import os, sys; d = os.fsencode(sys.argv[1]); print(sorted(os.listdir(d)), open(d + b'/dir\\xfe/inner.txt').read(), "
            + "open(d + b'/bad\\xff.txt').read(), os.readlink(d + b'/link'))", target).Trim()
            .ShouldBe("[b'bad\\xff.txt', b'dir\\xfe', b'good.txt', b'link'] y x b'bad\\xff.txt'");
    }

    [Fact]
    public async Task Symlink_loops_are_stored_as_symlinks_not_followed()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("d/file.txt", "x"u8.ToArray());
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "a"), "b");
        File.CreateSymbolicLink(Path.Combine(_rig.Source, "b"), "a");
        Directory.CreateSymbolicLink(Path.Combine(_rig.Source, "d", "self"), ".");
        Directory.CreateSymbolicLink(Path.Combine(_rig.Source, "d", "up"), "..");

        var result = await _rig.BackupAsync(1 << 20, ct).WaitAsync(TimeSpan.FromSeconds(30), ct);

        result.Tree.Skipped.ShouldBeEmpty();
        result.Tree.Entries.Select(e => (e.Path, e.Kind, e.LinkTarget)).ShouldBe(
        [
            ("a", EntryKind.Symlink, "b"), ("b", EntryKind.Symlink, "a"), ("d", EntryKind.Directory, null),
            ("d/file.txt", EntryKind.File, null), ("d/self", EntryKind.Symlink, "."), ("d/up", EntryKind.Symlink, ".."),
        ]);
        var target = _rig.NewTarget();
        await _rig.RestoreAsync(result.Manifest, target, ct);
        TreeSnapshot.Of(target).Values.ShouldBe(TreeSnapshot.Of(_rig.Source).Values);
    }

    [Fact]
    public async Task A_file_that_changes_while_it_is_read_is_skipped_with_a_reason_and_the_next_run_takes_it()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a-steady.txt", "steady"u8.ToArray());
        // 64 MiB in 1 MiB packs: the first pack is uploaded while the reader is still far from the end (the pipeline's
        // queues hold a few chunks only), and that is when the file is appended to.
        var growing = _rig.Write("b-growing.bin", System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 << 20));
        var changed = false;

        var result = await _rig.BackupAsync(1 << 20, _ =>
        {
            if (changed) return;
            changed = true;
            using var append = new FileStream(growing, FileMode.Append, FileAccess.Write);
            append.Write("more"u8);
        }, useCache: true, ct);

        changed.ShouldBeTrue();
        var skipped = result.Tree.Skipped.ShouldNotBeNull().ShouldHaveSingleItem();
        skipped.Path.ShouldBe("b-growing.bin");
        skipped.Reason.ShouldContain("changed while it was being read");
        result.Tree.Entries.Select(e => e.Path).ShouldBe(["a-steady.txt"]);

        // Left for the next run, which reads it whole (the cache never vouched for it).
        var next = await _rig.BackupAsync(1 << 20, ct);
        next.Tree.Skipped.ShouldBeEmpty();
        next.Tree.Entries.Single(e => e.Path == "b-growing.bin").Size.ShouldBe((64 << 20) + 4);
        next.Archive.FilesFromCache.ShouldBe(1);
    }
}
