using System.Diagnostics;
using System.Runtime.Versioning;
using Backup.Agent.BackingUp;
using Backup.Agent.Restoring;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.UnitTests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Backup.UnitTests.Engine;

/// <summary>
/// The agent's engine wired the way the product wires it, minus HTTP: packs sealed by the
/// <see cref="PackWriter"/> land in a real <see cref="DiskStore"/>, and restores fetch them back from it.
/// </summary>
[UnsupportedOSPlatform("windows")]
internal sealed class BackupRig : IDisposable
{
    private readonly TempDirectory _temp = new();

    public BackupRig()
    {
        Source = _temp.Sub("source");
        BackupScratch = _temp.Sub("backup-scratch");
        RestoreScratch = _temp.Sub("restore-scratch");
        Store = new DiskStore(_temp.Sub("store"));
    }

    public string Source { get; }
    public string BackupScratch { get; }
    public string RestoreScratch { get; }
    public DiskStore Store { get; }

    public string NewTarget(string name = "target") => Path.Combine(_temp.Path, name);

    public Task<ArchiveResult> BackupAsync(long targetBytes, CancellationToken ct) => BackupAsync(targetBytes, _ => { }, ct);

    /// <summary>As <see cref="BackupAsync(long, CancellationToken)"/>, calling <paramref name="beforeSeal"/> with the
    /// 1-based number of each seal before the pack is stored: a test makes an upload fail by throwing from it.</summary>
    public async Task<ArchiveResult> BackupAsync(long targetBytes, Action<int> beforeSeal, CancellationToken ct)
    {
        var seals = 0;
        await using var packs = new PackWriter(BackupScratch, targetBytes, async (file, packId, _) =>
        {
            beforeSeal(++seals);
            await using var content = File.OpenRead(file);
            await Store.PutPackAsync(packId, content, long.MaxValue, ct);
        });
        return await new Archiver(NullLogger.Instance).ArchiveAsync(Guid.NewGuid(), Source, packs, (_, _) => { }, ct);
    }

    public Task<RestoreResult> RestoreAsync(Manifest manifest, string target, CancellationToken ct) =>
        RestoreAsync(manifest, target, RestoreOptions.Everything, ct);

    public Task<RestoreResult> RestoreAsync(Manifest manifest, string target, RestoreOptions options, CancellationToken ct) =>
        new Restorer(NullLogger.Instance).RestoreAsync(manifest, target, RestoreScratch, async (packId, destination, token) =>
        {
            await using var pack = Store.OpenPack(packId);
            await pack.CopyToAsync(destination, token);
        }, options, ct);

    public string Write(string relative, byte[] content, UnixFileMode? mode = null, DateTime? mtimeUtc = null)
    {
        var path = Path.Combine(Source, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        if (mode is { } m) File.SetUnixFileMode(path, m);
        if (mtimeUtc is { } t) File.SetLastWriteTimeUtc(path, t);
        return path;
    }

    public static void MakeFifo(string path)
    {
        using var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        mkfifo.WaitForExit();
        if (mkfifo.ExitCode != 0) throw new InvalidOperationException($"mkfifo {path} failed with {mkfifo.ExitCode}.");
    }

    public void Dispose() => _temp.Dispose();
}
