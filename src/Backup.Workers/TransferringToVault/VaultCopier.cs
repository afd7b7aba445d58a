using Azure;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using Backup.Commands.VaultTransfers;
using Backup.Projections.DataSources;
using Backup.Projections.ProtectionGroups;
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

    /// <summary>
    /// Copies what the vault lacks and records each upload. When <paramref name="ct"/> is cancelled (the worker is
    /// stopping) the copy stops at once and records nothing more: not a failure, just a copy to resume, which the next
    /// attempt does at the first pack not yet recorded (a pack the vault already holds in full is recorded, not sent).
    /// </summary>
    public async Task CopyAsync(Guid recoveryPointId, IReadOnlyList<string> packIds, CommandMetadata metadata, CancellationToken ct)
    {
        // Resolved late: the store owns this copier's subscription, so taking it in the constructor would be circular.
        var store = services.GetRequiredService<IDocumentStore>();
        var transferId = VaultTransfer.IdFor(recoveryPointId);
        VaultTransfer transfer;
        long version;
        Pacer pacer;
        // The start is appended at the version read; another copier recording a pack in between (one that lost its lead and
        // has not stopped yet) makes it fail: read again and decide again.
        for (var attempt = 1; ; attempt++)
        {
            await using var session = metadata.ApplyTo(store.LightweightSession());
            (var state, version) = await session.LoadAsync<VaultTransfer>(transferId, VaultTransfer.Next, ct);
            var started = VaultTransfer.Start(state, recoveryPointId, packIds.Count, clock.GetUtcNow());
            if (started is null)
            {
                log.LogInformation("Recovery point {RecoveryPointId} is already in the vault", recoveryPointId);
                return;
            }
            session.AppendExpected(transferId, version, started);
            try
            {
                await session.SaveChangesAsync(ct);
            }
            catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException) when (attempt < 10)
            {
                continue;
            }
            transfer = VaultTransfer.Next(state, started)!;
            version++;
            pacer = new Pacer(clock, await ThrottlingAsync(session, recoveryPointId, ct));
            break;
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
                (transfer, version) = await RecordAsync(store, metadata, transfer, version, t => VaultTransfer.RecordUpload(t, packId, length, clock.GetUtcNow()), ct);
            }

            var manifest = await disk.ReadManifestAsync(recoveryPointId, ct);
            await _retry.ExecuteAsync(async token => await vault.UploadManifestAsync(recoveryPointId, manifest, token), ct);
            (transfer, version) = await RecordAsync(store, metadata, transfer, version,
                t => t.Completed ? null : VaultTransfer.Complete(t, packIds, bytes, clock.GetUtcNow()), ct);
            log.LogInformation("Recovery point {RecoveryPointId} copied to the vault: {Packs} packs, {Bytes} bytes", recoveryPointId, packIds.Count, bytes);
        }
        catch (Exception e) when (ct.IsCancellationRequested)
        {
            log.LogInformation("Copy of recovery point {RecoveryPointId} to the vault interrupted by shutdown with {Uploaded} of {Packs} packs recorded; it resumes there",
                recoveryPointId, transfer.UploadedPacks.Count, packIds.Count);
            // Whatever the interrupted call threw (the SDK may wrap it), the daemon must see a cancellation, not a failure.
            if (e is OperationCanceledException) throw;
            throw new OperationCanceledException("The vault copy was interrupted.", e, ct);
        }
        catch (Exception e)
        {
            log.LogError(e, "Copy of recovery point {RecoveryPointId} to the vault failed", recoveryPointId);
            await using var session = metadata.ApplyTo(store.LightweightSession());
            session.Events.Append(transferId, VaultTransfer.Fail(transfer, e.Message, clock.GetUtcNow()));
            await session.SaveChangesAsync(CancellationToken.None);
            throw;
        }
    }

    /// <summary>
    /// Appends what <paramref name="decide"/> makes of the transfer at the version this copier last saw. Another copier may
    /// have written in between (a worker that lost its leadership, or was told to stop, and had not stopped yet): then the
    /// stream is read again and decided again, so each pack and the completion are recorded once whoever gets there first.
    /// </summary>
    private static async Task<(VaultTransfer Transfer, long Version)> RecordAsync(
        IDocumentStore store, CommandMetadata metadata, VaultTransfer transfer, long version, Func<VaultTransfer, object?> decide, CancellationToken ct)
    {
        while (decide(transfer) is { } next)
        {
            await using var session = metadata.ApplyTo(store.LightweightSession());
            session.AppendExpected(transfer.Id, version, next);
            try
            {
                await session.SaveChangesAsync(ct);
                return (VaultTransfer.Next(transfer, next)!, version + 1);
            }
            catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
            {
                await using var query = store.QuerySession();
                (var current, version) = await query.LoadAsync<VaultTransfer>(transfer.Id, VaultTransfer.Next, ct);
                transfer = current!;
            }
        }
        return (transfer, version);
    }
}
