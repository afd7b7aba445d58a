using System.Runtime.CompilerServices;
using Azure.Storage.Blobs;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;

namespace Backup.Agent.Offline;

/// <summary>
/// A repository read directly, without the backup server or its catalog: the vault (Azure Blob) or the server's disk
/// store. Everything needed is in it: the key file, the manifests, and packs that carry their own index.
/// </summary>
public abstract class OfflineRepository
{
    public abstract string Name { get; }
    public abstract Task<byte[]?> KeyFileAsync(CancellationToken ct);
    public abstract Task<byte[]?> ManifestAsync(Guid recoveryPointId, CancellationToken ct);
    public abstract IAsyncEnumerable<Guid> RecoveryPointsAsync(CancellationToken ct);
    public abstract Task<bool> HasPackAsync(string packId, CancellationToken ct);
    public abstract Task<IReadOnlyList<PackEntry>> PackIndexAsync(string packId, CancellationToken ct);
    public abstract Task CopyPackAsync(string packId, Stream destination, CancellationToken ct);

    public static OfflineRepository Vault(string connectionString, string container) =>
        new VaultRepository(new VaultStore(new BlobServiceClient(connectionString).GetBlobContainerClient(container)), container);

    public static OfflineRepository Disk(string root) =>
        Directory.Exists(Path.Combine(root, "packs")) ? new DiskRepository(new DiskStore(root))
            : throw new DirectoryNotFoundException($"{root} is not a disk store (it has no packs/ folder).");

    private static Guid? RecoveryPointOf(string manifestName) =>
        Guid.TryParseExact(Path.GetFileNameWithoutExtension(manifestName), "N", out var id) ? id : null;

    private sealed class VaultRepository(VaultStore vault, string container) : OfflineRepository
    {
        public override string Name => $"vault container {container}";
        public override Task<byte[]?> KeyFileAsync(CancellationToken ct) => vault.ReadKeyFileAsync(ct);
        public override Task<byte[]?> ManifestAsync(Guid recoveryPointId, CancellationToken ct) => vault.ReadManifestAsync(recoveryPointId, ct);

        public override async IAsyncEnumerable<Guid> RecoveryPointsAsync([EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (var blob in vault.Container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, "manifests/", ct))
                if (RecoveryPointOf(blob.Name) is { } id) yield return id;
        }

        public override async Task<bool> HasPackAsync(string packId, CancellationToken ct) => await vault.PackLengthAsync(packId, ct) is not null;
        public override Task<IReadOnlyList<PackEntry>> PackIndexAsync(string packId, CancellationToken ct) => vault.ReadPackIndexAsync(packId, ct);

        public override async Task CopyPackAsync(string packId, Stream destination, CancellationToken ct)
        {
            await using var pack = await vault.OpenPackAsync(packId, ct);
            await pack.CopyToAsync(destination, 1 << 20, ct);
        }
    }

    private sealed class DiskRepository(DiskStore disk) : OfflineRepository
    {
        public override string Name => $"disk store {disk.Root}";
        public override Task<byte[]?> KeyFileAsync(CancellationToken ct) => disk.ReadKeyFileAsync(ct);

        public override async Task<byte[]?> ManifestAsync(Guid recoveryPointId, CancellationToken ct) =>
            disk.HasManifest(recoveryPointId) ? await disk.ReadManifestAsync(recoveryPointId, ct) : null;

        public override async IAsyncEnumerable<Guid> RecoveryPointsAsync([EnumeratorCancellation] CancellationToken ct)
        {
            await Task.CompletedTask;
            foreach (var file in Directory.EnumerateFiles(Path.Combine(disk.Root, "manifests"), "*.json"))
                if (RecoveryPointOf(file) is { } id) yield return id;
        }

        public override Task<bool> HasPackAsync(string packId, CancellationToken ct) => Task.FromResult(disk.HasPack(packId));

        public override Task<IReadOnlyList<PackEntry>> PackIndexAsync(string packId, CancellationToken ct)
        {
            try
            {
                return Task.FromResult(Pack.ReadIndex(disk.PackPath(packId)));
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"Pack {packId} on disk is not a valid pack: {e.Message}", e);
            }
        }

        public override async Task CopyPackAsync(string packId, Stream destination, CancellationToken ct)
        {
            await using var pack = disk.OpenPack(packId);
            await pack.CopyToAsync(destination, 1 << 20, ct);
        }
    }
}
