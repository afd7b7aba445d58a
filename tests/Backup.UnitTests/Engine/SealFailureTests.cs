using System.Runtime.Versioning;
using System.Security.Cryptography;
using Backup.Agent.BackingUp;

namespace Backup.UnitTests.Engine;

/// <summary>A pack that cannot be stored fails the whole backup: it is not a problem with the file being read.</summary>
[UnsupportedOSPlatform("windows")]
public sealed class SealFailureTests : IDisposable
{
    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    // Regression: an IOException from the upload used to be caught as an unreadable file, giving a "successful"
    // partial backup with a.bin in Skipped.
    [Fact]
    public async Task Failed_pack_upload_fails_the_backup_instead_of_skipping_the_file()
    {
        var ct = TestContext.Current.CancellationToken;
        _rig.Write("a.bin", RandomNumberGenerator.GetBytes(6 << 20)); // about seven packs of 1 MiB
        _rig.Write("b.bin", RandomNumberGenerator.GetBytes(10));
        var seals = 0;

        var e = await Should.ThrowAsync<PackSealException>(() => _rig.BackupAsync(1 << 20, n =>
        {
            seals = n;
            if (n == 2) throw new IOException("upload failed");
            // An upload takes a moment, as a real one does: the other uploader is still busy with its pack while the failure
            // is recorded (instant uploads raced it on a loaded machine and let one more pack start first).
            Thread.Sleep(50);
        }, useCache: true, ct));

        e.InnerException.ShouldBeOfType<IOException>().Message.ShouldBe("upload failed");
        // Nothing new was started after the failure: at most the pack the other uploader had already taken (two run at once).
        seals.ShouldBeLessThanOrEqualTo(3);
        Directory.GetFileSystemEntries(_rig.BackupScratch).ShouldBeEmpty();
        // The run was not committed, so the metadata cache must not vouch for anything it read.
        File.Exists(_rig.CachePath).ShouldBeFalse();
    }
}
