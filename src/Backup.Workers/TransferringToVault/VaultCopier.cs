using Azure;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using Backup.Projections.DataSources;
using Backup.Projections.ProtectionGroups;
using Backup.Commands.VaultTransfers;
using Backup.Storage.Disk;
using Backup.Storage.Transfer;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Retry;

namespace Backup.Workers.TransferringToVault;

/// <summary>
/// Copies one recovery point from the local disk store to the vault, pack by pack, recording every upload
/// as an event as soon as it lands. A copy that is interrupted resumes at the first pack the vault lacks;
/// the recovery point counts as online only once its manifest is there after all of its packs.
/// </summary>
public sealed class VaultCopier(
    IServiceProvider services, DiskStore disk, VaultStore vault, TimeProvider clock, IOptions<VaultCopyOptions> options, ILogger<VaultCopier> log)
{
    // A vault outage is waited out pack by pack; only when the retries are spent is the copy recorded as failed.
    private readonly ResiliencePipeline _retry = new ResiliencePipelineBuilder()
        .AddRetry(new RetryStrategyOptions
        {
            ShouldHandle = new PredicateBuilder().Handle<RequestFailedException>().Handle<HttpRequestException>().Handle<IOException>(),
            MaxRetryAttempts = options.Value.RetryAttempts,
            Delay = options.Value.RetryDelay,
            MaxDelay = options.Value.MaxRetryDelay,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            OnRetry = a =>
            {
                log.LogWarning("Vault unavailable ({Reason}); retry {Attempt} in {Delay}", a.Outcome.Exception?.Message, a.AttemptNumber + 1, a.RetryDelay);
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    /// <summary>
    /// The group's online throttling as a rate by instant (work hours in the group's time zone), or no limit. Read when the
    /// copy starts: a change applies from the next copy on.
    /// </summary>
    private static async Task<Func<DateTimeOffset, long?>> ThrottlingAsync(IDocumentSession session, Guid recoveryPointId, CancellationToken ct)
    {
        var (point, _) = await session.LoadAsync<RecoveryPoint>(recoveryPointId, RecoveryPoint.Next, ct);
        var source = point is null ? null : await session.LoadAsync<DataSourceView>(point.DataSourceId, ct);
        var group = source is null ? null : await session.LoadAsync<ProtectionGroupView>(source.GroupId, ct);
        if (group?.OnlineThrottling is not { } throttling) return _ => null;
        var zone = group.ShortTermPolicy?.TimeZone ?? "UTC";
        return now => ThrottleSchedule.BytesPerSecond(throttling, zone, now);
    }

    public async Task CopyAsync(Guid recoveryPointId, IReadOnlyList<string> packIds, CommandMetadata metadata, CancellationToken ct)
    {
        // Resolved late: the store owns this copier's subscription, so taking it in the constructor would be circular.
        var store = services.GetRequiredService<IDocumentStore>();
        var transferId = VaultTransfer.IdFor(recoveryPointId);
        VaultTransfer transfer;
        Pacer pacer;
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
            pacer = new Pacer(clock, await ThrottlingAsync(session, recoveryPointId, ct));
        }

        try
        {
            long bytes = 0;
            foreach (var packId in packIds)
            {
                ct.ThrowIfCancellationRequested();
                var length = disk.PackLength(packId);
                bytes += length;
                await _retry.ExecuteAsync(async token =>
                {
                    // Resume point: a pack already in the vault with its full length is not sent again.
                    if (await vault.PackLengthAsync(packId, token) == length) return;
                    await using var pack = new PacedStream(disk.OpenPack(packId), pacer);
                    await vault.UploadPackAsync(packId, pack, token);
                }, ct);
                var uploaded = VaultTransfer.RecordUpload(transfer, packId, length, clock.GetUtcNow());
                if (uploaded is null) continue;
                await using var session = metadata.ApplyTo(store.LightweightSession());
                session.Events.Append(transferId, uploaded);
                await session.SaveChangesAsync(ct);
                transfer = VaultTransfer.Next(transfer, uploaded)!;
            }

            var manifest = await disk.ReadManifestAsync(recoveryPointId, ct);
            await _retry.ExecuteAsync(async token => await vault.UploadManifestAsync(recoveryPointId, manifest, token), ct);
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
