using Backup.Commands.Common;
using Backup.Commands.VaultTransfers;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using Marten;

namespace Backup.Workers.TransferringToVault;

/// <summary>
/// Copies one recovery point from the local disk store to the vault, pack by pack, recording every upload
/// as an event as soon as it lands. A copy that is interrupted resumes at the first pack the vault lacks;
/// the recovery point counts as online only once its manifest is there after all of its packs.
/// </summary>
public sealed class VaultCopier(IServiceProvider services, DiskStore disk, VaultStore vault, TimeProvider clock, ILogger<VaultCopier> log)
{
    public async Task CopyAsync(Guid recoveryPointId, IReadOnlyList<string> packIds, CommandMetadata metadata, CancellationToken ct)
    {
        // Resolved late: the store owns this copier's subscription, so taking it in the constructor would be circular.
        var store = services.GetRequiredService<IDocumentStore>();
        var transferId = VaultTransfer.IdFor(recoveryPointId);
        VaultTransfer transfer;
        await using (var session = metadata.ApplyTo(store.LightweightSession()))
        {
            var (state, version) = await session.LoadAsync<VaultTransfer>(transferId, VaultTransfer.Next, ct);
            var started = VaultTransfer.Start(state, recoveryPointId, packIds.Count, clock.GetUtcNow());
            if (started is null)
            {
                log.LogInformation("Recovery point {RecoveryPointId} is already in the vault", recoveryPointId);
                return;
            }
            session.AppendExpected(transferId, version, started);
            await session.SaveChangesAsync(ct);
            transfer = VaultTransfer.Next(state, started)!;
        }

        try
        {
            long bytes = 0;
            foreach (var packId in packIds)
            {
                ct.ThrowIfCancellationRequested();
                var length = disk.PackLength(packId);
                bytes += length;
                if (await vault.PackLengthAsync(packId, ct) != length)
                {
                    await using var pack = disk.OpenPack(packId);
                    await vault.UploadPackAsync(packId, pack, ct);
                }
                var uploaded = VaultTransfer.RecordUpload(transfer, packId, length, clock.GetUtcNow());
                if (uploaded is null) continue;
                await using var session = metadata.ApplyTo(store.LightweightSession());
                session.Events.Append(transferId, uploaded);
                await session.SaveChangesAsync(ct);
                transfer = VaultTransfer.Next(transfer, uploaded)!;
            }

            await vault.UploadManifestAsync(recoveryPointId, await disk.ReadManifestAsync(recoveryPointId, ct), ct);
            await using (var session = metadata.ApplyTo(store.LightweightSession()))
            {
                session.Events.Append(transferId, VaultTransfer.Complete(transfer, packIds, bytes, clock.GetUtcNow()));
                await session.SaveChangesAsync(ct);
            }
            log.LogInformation("Recovery point {RecoveryPointId} copied to the vault: {Packs} packs, {Bytes} bytes", recoveryPointId, packIds.Count, bytes);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "Copy of recovery point {RecoveryPointId} to the vault failed", recoveryPointId);
            await using var session = metadata.ApplyTo(store.LightweightSession());
            session.Events.Append(transferId, new VaultTransferFailed(transferId, recoveryPointId, e.Message, clock.GetUtcNow()));
            await session.SaveChangesAsync(CancellationToken.None);
            throw;
        }
    }
}
