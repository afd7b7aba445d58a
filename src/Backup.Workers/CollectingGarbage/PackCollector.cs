using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Synchronising;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Workers.CollectingGarbage;

/// <summary>What one round of collection did.</summary>
public sealed record CollectionRound(
    IReadOnlyList<string> CondemnedOnDisk, IReadOnlyList<string> DeletedFromDisk, IReadOnlyList<string> KeptOnDisk, IReadOnlyList<string> DeletedFromVault);

/// <summary>
/// Reclaims the space of packs no recovery point needs any more, on both tiers, without ever deleting one that a live or
/// a new recovery point needs.
/// <para>
/// Disk, in two steps: <b>condemn</b> (under the exclusive <see cref="CollectionLock"/>) the pack files that no recovery
/// point needing the disk references and no running backup wrote, so agents stop being told their chunks are known; then,
/// in a later round, once every backup that was running at that moment has ended, <b>delete</b> (exclusive again) those
/// still condemned and still unreferenced, with their chunk-index entries. A commit or a pack upload that needed a
/// condemned pack meanwhile took it off the list (they hold the lock shared), so it is kept.
/// </para>
/// <para>
/// Vault, in one step under the exclusive lock: pack blobs that no recovery point the vault keeps (or is still to copy)
/// references are deleted. A copy starts only after its recovery point is committed, and commits wait for the lock, so a
/// copy never counts on a blob being deleted at that moment; one whose pack went just before re-uploads it from disk.
/// </para>
/// Manifests of recovery points no longer kept on a tier are deleted with the same round. Every deletion is recorded
/// (<see cref="PacksCondemned"/>, <see cref="PacksDeleted"/>). A crash between the record and the file deletion leaves an
/// unreferenced file, which the next rounds condemn and delete again.
/// </summary>
public sealed class PackCollector(
    IServiceProvider services, DiskStore disk, VaultStore vault, TimeProvider clock, IOptions<PackCollectionOptions> options, ILogger<PackCollector> log)
    : BackgroundService
{
    private static readonly CommandMetadata Worker = new() { Actor = "worker:pack-collector" };

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PeriodicWork.RunAsync(clock, options.Value.Interval, async (now, ct) => await CollectAsync(now, ct), log,
            "Collecting unreferenced packs", stoppingToken,
            new Leadership(services, "pack collector", log));

    /// <summary>One round: delete what earlier rounds condemned and may now go, condemn what is unreferenced now, clean the vault.</summary>
    public async Task<CollectionRound> CollectAsync(DateTimeOffset now, CancellationToken ct)
    {
        var (deleted, kept) = await SweepDiskAsync(now, ct);
        var condemned = await CondemnOnDiskAsync(now, ct);
        var fromVault = await CollectVaultAsync(now, ct);
        if (condemned.Count + deleted.Count + fromVault.Count > 0)
            log.LogInformation("Pack collection: {Condemned} packs condemned on disk, {Deleted} deleted from disk ({Kept} kept), {Vault} deleted from the vault",
                condemned.Count, deleted.Count, kept.Count, fromVault.Count);
        return new CollectionRound(condemned, deleted, kept, fromVault);
    }

    private IDocumentSession Session() => Worker.ApplyTo(services.GetRequiredService<IDocumentStore>().LightweightSession());

    /// <summary>
    /// Every recovery point that may hold references. Refuses to answer when the projection does not cover every recovery
    /// point in the event store (a store older than the projection, not rebuilt): a point it missed would look like
    /// garbage.
    /// </summary>
    private static async Task<List<RecoveryPointPacks>> PointsAsync(IDocumentSession session, CancellationToken ct)
    {
        // Requests first, then the documents: each statement reads its own snapshot, and a backup requested in between (the
        // schedulers do not wait for the collection lock) adds its document with its event, so only a projection that is
        // really behind has fewer documents than there were requests before it was read.
        await using var command = new Npgsql.NpgsqlCommand(
            $"select count(*) from {session.DocumentStore.Options.Events.DatabaseSchemaName}.mt_events where type = @type", session.Connection);
        command.Parameters.AddWithValue("type", Commands.BackupEvents.BackupRequestedAlias);
        var requested = (long)(await command.ExecuteScalarAsync(ct))!;
        var all = await session.Query<RecoveryPointPacks>().ToListAsync(ct);
        if (all.Count < requested)
            throw new InvalidOperationException(
                $"The pack-reference projection holds {all.Count} recovery points but the event store has {requested}: rebuild projection "
                + $"{nameof(RecoveryPointPacks)} before collecting garbage. Nothing was deleted.");
        return [.. all.Where(p => p.Status != RecoveryPointStatus.Failed)];
    }

    /// <summary>
    /// Packs the disk must keep: those of points that need the disk, those running backups and synchronisations wrote, and
    /// those the latest synchronisation of each protected data source references while no recovery point was created after
    /// it (the next recovery point will reference them; the agent's metadata cache counts on them).
    /// </summary>
    private static HashSet<string> NeededOnDisk(IReadOnlyList<RecoveryPointPacks> points, Syncs syncs)
    {
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in points)
        {
            if (p.NeedsDisk) needed.UnionWith(p.Packs);
            if (p.Running) needed.UnionWith(p.Written);
        }
        foreach (var s in syncs.Running) needed.UnionWith(s.Written);
        var lastPoint = points.Where(p => p.Status == RecoveryPointStatus.Created && p.CreatedAt is not null)
            .GroupBy(p => p.DataSourceId).ToDictionary(g => g.Key, g => g.Max(p => p.CreatedAt!.Value));
        foreach (var s in syncs.Latest)
            if (!lastPoint.TryGetValue(s.DataSourceId, out var created) || created < s.SynchronisedAt)
                needed.UnionWith(s.Packs);
        return needed;
    }

    /// <summary>
    /// The synchronisations that hold packs: running ones, and the latest synchronised one of each data source still protected;
    /// <see cref="Superseded"/> are the other synchronised ones, which hold nothing any more.
    /// </summary>
    private sealed record Syncs(IReadOnlyList<SyncPacks> Running, IReadOnlyList<SyncPacks> Latest, IReadOnlyList<SyncPacks> Superseded)
    {
        public static async Task<Syncs> LoadAsync(IDocumentSession session, CancellationToken ct)
        {
            var all = await session.Query<SyncPacks>().Where(s => s.Status != SyncStatus.Failed).ToListAsync(ct);
            var removed = (await session.Query<Backup.Projections.DataSources.DataSourceView>()
                .Where(d => d.RemovedAt != null).Select(d => d.Id).ToListAsync(ct)).ToHashSet();
            var synced = all.Where(s => s.Status == SyncStatus.Synchronised).ToList();
            var latest = synced.Where(s => !removed.Contains(s.DataSourceId))
                .GroupBy(s => s.DataSourceId).Select(g => g.MaxBy(s => s.SynchronisedAt)!).ToList();
            return new Syncs([.. all.Where(s => s.Running)], latest, [.. synced.Except(latest)]);
        }
    }

    private async Task<IReadOnlyList<string>> CondemnOnDiskAsync(DateTimeOffset now, CancellationToken ct)
    {
        await using var session = Session();
        await CollectionLock.ExclusiveAsync(session, ct);
        var points = await PointsAsync(session, ct);
        var syncs = await Syncs.LoadAsync(session, ct);
        var needed = NeededOnDisk(points, syncs);
        // Superseded synchronisations hold nothing: their documents go with this round (in the same transaction).
        foreach (var superseded in syncs.Superseded) session.Delete(superseded);
        var already = (await session.Query<CondemnedPack>().Select(p => p.Id).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
        var youngest = now - options.Value.MinPackAge;
        var condemned = disk.ListPacks()
            .Where(f => f.WrittenAt <= youngest && !needed.Contains(f.PackId) && !already.Contains(f.PackId))
            .OrderBy(f => f.PackId, StringComparer.Ordinal)
            .ToList();
        if (condemned.Count == 0)
        {
            if (syncs.Superseded.Count > 0) await session.SaveChangesAsync(ct);
            return [];
        }

        var collectionId = Guid.CreateVersion7();
        var waitingFor = points.Where(p => p.Running).Select(p => p.Id).Concat(syncs.Running.Select(s => s.Id)).ToList();
        foreach (var file in condemned)
            session.Store(new CondemnedPack { Id = file.PackId, CollectionId = collectionId, Bytes = file.Bytes, CondemnedAt = now });
        session.Store(new Condemnation { Id = collectionId, WaitingFor = waitingFor, PackIds = [.. condemned.Select(f => f.PackId)], CondemnedAt = now });
        session.Events.StartStream(collectionId, PackCollection.Condemn(collectionId, [.. condemned.Select(f => (f.PackId, f.Bytes))], waitingFor, now));
        await session.SaveChangesAsync(ct);
        return [.. condemned.Select(f => f.PackId)];
    }

    private async Task<(IReadOnlyList<string> Deleted, IReadOnlyList<string> Kept)> SweepDiskAsync(DateTimeOffset now, CancellationToken ct)
    {
        var deleted = new List<string>();
        var kept = new List<string>();
        var manifests = new List<Guid>();
        await using (var session = Session())
        {
            await CollectionLock.ExclusiveAsync(session, ct);
            var condemnations = await session.Query<Condemnation>().ToListAsync(ct);
            if (condemnations.Count == 0) return ([], []);
            var points = await PointsAsync(session, ct);
            var syncs = await Syncs.LoadAsync(session, ct);
            var running = points.Where(p => p.Running).Select(p => p.Id).Concat(syncs.Running.Select(s => s.Id)).ToHashSet();
            var needed = NeededOnDisk(points, syncs);
            var ready = condemnations.Where(c => !c.WaitingFor.Any(running.Contains)).ToList();
            if (ready.Count == 0) return ([], []);

            manifests.AddRange(points.Where(p => p.Status == RecoveryPointStatus.Created && !p.NeedsDisk && !p.DiskReclaimed).Select(p => p.Id));
            foreach (var condemnation in ready)
            {
                var packs = await session.Query<CondemnedPack>().Where(p => p.CollectionId == condemnation.Id).ToListAsync(ct);
                var gone = new List<(string PackId, long Bytes)>();
                // Taken off the list by a commit or an upload that needed them: kept.
                var stays = condemnation.PackIds.Except(packs.Select(p => p.Id), StringComparer.Ordinal).ToList();
                foreach (var pack in packs)
                {
                    session.Delete(pack);
                    if (needed.Contains(pack.Id))
                    {
                        stays.Add(pack.Id);
                        continue;
                    }
                    var packId = pack.Id;
                    session.DeleteWhere<Commands.RecoveryPoints.StoredChunk>(c => c.PackId == packId);
                    gone.Add((pack.Id, pack.Bytes));
                }
                session.Delete(condemnation);
                session.Events.Append(condemnation.Id,
                    PackCollection.Delete(condemnation.Id, StorageTier.Disk, gone, stays, condemnation == ready[0] ? manifests : [], now));
                deleted.AddRange(gone.Select(p => p.PackId));
                kept.AddRange(stays);
            }
            await session.SaveChangesAsync(ct);
        }

        // Recorded first, deleted second: a crash in between leaves files no index entry points to, which later rounds take.
        foreach (var packId in deleted) disk.DeletePack(packId);
        foreach (var id in manifests) disk.DeleteManifest(id);
        return (deleted, kept);
    }

    private async Task<IReadOnlyList<string>> CollectVaultAsync(DateTimeOffset now, CancellationToken ct)
    {
        await using var session = Session();
        await CollectionLock.ExclusiveAsync(session, ct);
        var points = await PointsAsync(session, ct);
        var needed = points.Where(p => p.NeedsVault).SelectMany(p => p.Packs).ToHashSet(StringComparer.Ordinal);
        var youngest = now - options.Value.MinPackAge;
        var garbage = new List<StoredPackFile>();
        await foreach (var blob in vault.ListPacksAsync(ct))
            if (blob.WrittenAt <= youngest && !needed.Contains(blob.PackId)) garbage.Add(blob);
        var manifests = points.Where(p => p.Status == RecoveryPointStatus.Created && p.InVault && !p.NeedsVault && !p.VaultReclaimed).Select(p => p.Id).ToList();
        if (garbage.Count == 0 && manifests.Count == 0) return [];

        // Deleted while the lock is held: no commit can make one of these packs needed before they are gone.
        foreach (var blob in garbage) await vault.DeletePackAsync(blob.PackId, ct);
        foreach (var id in manifests) await vault.DeleteManifestAsync(id, ct);
        var collectionId = Guid.CreateVersion7();
        session.Events.StartStream(collectionId,
            PackCollection.Delete(collectionId, StorageTier.Vault, [.. garbage.Select(b => (b.PackId, b.Bytes))], [], manifests, now));
        await session.SaveChangesAsync(ct);
        return [.. garbage.Select(b => b.PackId)];
    }
}
