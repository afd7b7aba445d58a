using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Storage.Checking;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Checking;

/// <summary>
/// The consistency check, daily (once per day across workers: <see cref="ConsistencyCheckDue"/> on a stream named by the
/// day; taken over by another worker when the one running it stops or dies, see <see cref="TickAsync"/>) and whenever a copy is found inconsistent (<see cref="ConsistencyRepairSubscription"/>): reads back every pack a
/// kept recovery point needs on each tier, repairs a damaged or missing copy from the other tier's sound copy (verified
/// as it is written), and where no sound copy is left drops the pack from the chunk index, so agents send that data again,
/// and requests a new backup of each data source concerned. Findings go on the recovery points (<see cref="RecoveryPointChecked"/>,
/// damaged and then, once repaired, sound again) and in one <see cref="ConsistencyCheckCompleted"/>.
/// </summary>
public sealed class ConsistencyChecker(
    IServiceProvider services, DiskStore disk, VaultStore vault, TimeProvider clock, IOptions<ConsistencyCheckOptions> options, ILogger<ConsistencyChecker> log)
    : BackgroundService
{
    public const string Actor = "worker:consistency-check";
    private static readonly CommandMetadata Worker = new() { Actor = Actor };

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PeriodicWork.RunAsync(clock, options.Value.Interval, async (now, ct) => await TickAsync(now, ct), log, "Consistency check", stoppingToken);

    private IDocumentSession Session() => Worker.ApplyTo(services.GetRequiredService<IDocumentStore>().LightweightSession());

    /// <summary>
    /// Runs today's check when it is due and has not been completed, unless another worker is running it; null otherwise.
    /// The worker running the check holds the day's lock (<see cref="RunningLockKey"/>) for as long as it runs. A worker that
    /// was stopped, or died, in the middle let go of it (its transaction rolled back, or PostgreSQL ended its session), so
    /// the next tick of any worker finds the day's check started, not completed and free, and runs it.
    /// </summary>
    public async Task<ConsistencyCheckCompleted?> TickAsync(DateTimeOffset now, CancellationToken ct)
    {
        var day = DateOnly.FromDateTime(now.UtcDateTime);
        var dueAt = new DateTimeOffset(day.ToDateTime(options.Value.TimeOfDay), TimeSpan.Zero);
        if (now < dueAt) return null;
        var checkId = ConsistencyCheck.DueId(day);
        var startedHere = true;
        await using (var session = Session())
        {
            // Started already (the usual case for every tick after the first of the day): no collision to provoke, which
            // Marten would log as a failure each tick. Two workers starting it at once still collide below.
            var state = await session.Events.FetchStreamStateAsync(checkId, ct);
            if (state is not null) startedHere = false;
            else session.Events.StartStream(checkId, ConsistencyCheck.Due(day, dueAt));
            try
            {
                if (startedHere) await session.SaveChangesAsync(ct);
            }
            catch (Marten.Exceptions.ExistingStreamIdCollisionException)
            {
                startedHere = false; // started by another worker: running, done, or left by a worker that stopped
            }
        }

        await using var running = Session();
        await running.BeginTransactionAsync(ct);
        await using (var command = new Npgsql.NpgsqlCommand("select pg_try_advisory_xact_lock(@key)", running.Connection))
        {
            command.Parameters.AddWithValue("key", RunningLockKey(running.DocumentStore.Options.DatabaseSchemaName, checkId));
            if (await command.ExecuteScalarAsync(ct) is not true) return null; // another worker is running it
        }
        if ((await running.Events.FetchStreamAsync(checkId, token: ct)).Any(e => e.Data is ConsistencyCheckCompleted)) return null;
        if (!startedHere) log.LogWarning("Today's consistency check ({Day}) was started by a worker that stopped before it ended; running it here", day);
        try
        {
            return await CheckAsync(checkId, "daily", null, ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            return null; // completed by another worker meanwhile (one that had lost its session but not stopped): its findings stand
        }
    }

    /// <summary>The advisory lock the worker running a day's check holds (one per schema and check).</summary>
    public static long RunningLockKey(string schema, Guid checkId) =>
        Backup.Commands.Common.AdvisoryLockKey.For($"backup-consistency-check:{schema}:{checkId:N}");

    /// <summary>Checks (and repairs) every needed pack, or only <paramref name="onlyPacks"/>, on both tiers.</summary>
    public async Task<ConsistencyCheckCompleted> CheckAsync(Guid checkId, string reason, IReadOnlyCollection<string>? onlyPacks, CancellationToken ct)
    {
        List<RecoveryPointPacks> points;
        ILookup<string, ChunkLocation> indexed;
        long version;
        await using (var query = services.GetRequiredService<IDocumentStore>().QuerySession())
        {
            // The completion is appended at the version seen now, so a check run twice at once (see TickAsync) is recorded once.
            version = (await query.Events.FetchStreamStateAsync(checkId, ct))?.Version ?? 0;
            points = [.. await query.Query<RecoveryPointPacks>().Where(p => p.Status == RecoveryPointStatus.Created).ToListAsync(ct)];
            var all = points.SelectMany(p => p.Packs).Distinct(StringComparer.Ordinal).ToArray();
            indexed = (await query.InPacksAsync(all, ct)).ToLookup(c => c.PackId, StringComparer.Ordinal);
        }
        bool Wanted(string pack) => onlyPacks is null || onlyPacks.Contains(pack);
        var onDisk = points.Where(p => p.NeedsDisk).SelectMany(p => p.Packs).Where(Wanted).ToHashSet(StringComparer.Ordinal);
        var inVault = points.Where(p => p.NeedsVault && p.InVault).SelectMany(p => p.Packs).Where(Wanted).ToHashSet(StringComparer.Ordinal);

        var diskCheck = await TierCheck.DiskAsync(disk, onDisk, indexed, ct);
        var vaultCheck = await TierCheck.VaultAsync(vault, inVault, indexed, ct);
        var damaged = diskCheck.Damaged.Select(d => new DamagedCopy(d.PackId, StorageTier.Disk, d.Problem))
            .Concat(vaultCheck.Damaged.Select(d => new DamagedCopy(d.PackId, StorageTier.Vault, d.Problem))).ToList();
        var badOnDisk = diskCheck.Damaged.Select(d => d.PackId).ToHashSet(StringComparer.Ordinal);
        var badInVault = vaultCheck.Damaged.Select(d => d.PackId).ToHashSet(StringComparer.Ordinal);

        var repaired = new List<PackRepaired>();
        foreach (var packId in badOnDisk)
            if (!badInVault.Contains(packId) && await FromVaultAsync(packId, ct)) repaired.Add(new PackRepaired(packId, StorageTier.Disk, StorageTier.Vault));
        foreach (var packId in badInVault)
            if (!badOnDisk.Contains(packId) && disk.HasPack(packId) && await ToVaultAsync(packId, indexed[packId], ct)) repaired.Add(new PackRepaired(packId, StorageTier.Vault, StorageTier.Disk));
        var fixedOn = repaired.ToLookup(r => r.Tier);
        var unrecoverable = badOnDisk.Union(badInVault)
            .Where(p => !repaired.Any(r => r.PackId == p)).Order(StringComparer.Ordinal).ToList();

        var affected = points.Where(p => p.Packs.Any(pack => badOnDisk.Contains(pack) || badInVault.Contains(pack))).ToList();
        var now = clock.GetUtcNow();
        var requested = new List<Guid>();
        await using (var session = Session())
        {
            foreach (var point in affected)
            {
                Record(session, point, StorageTier.Disk, onDisk, diskCheck, fixedOn[StorageTier.Disk], now);
                Record(session, point, StorageTier.Vault, inVault, vaultCheck, fixedOn[StorageTier.Vault], now);
            }
            foreach (var packId in unrecoverable)
            {
                // No sound copy anywhere: the next backups must send this data again rather than point at it.
                var id = packId;
                session.DeleteWhere<StoredChunk>(c => c.PackId == id);
            }
            var lost = affected.Where(p => p.Packs.Any(unrecoverable.Contains)).Select(p => p.DataSourceId).Distinct();
            foreach (var dataSourceId in lost)
                // The same decision as "back up now": removed sources are not backed up again.
                if ((await session.LoadAsync<DataSource>(dataSourceId, DataSource.Next, ct)).State is { Removed: null } source)
                {
                    var rp = ConsistencyCheck.RepairBackupId(checkId, dataSourceId);
                    session.Events.StartStream<RecoveryPoint>(rp, RecoveryPoint.Request(source, dataSourceId, rp, Actor, now));
                    requested.Add(rp);
                }
            var completed = new ConsistencyCheckCompleted(checkId, reason, diskCheck.PacksChecked + vaultCheck.PacksChecked,
                diskCheck.BytesChecked + vaultCheck.BytesChecked, damaged, repaired, unrecoverable, [.. affected.Select(p => p.Id)], requested, now);
            if (version == 0) session.Events.Append(checkId, completed);
            else session.AppendExpected(checkId, version, completed);
            await session.SaveChangesAsync(ct);
            if (damaged.Count > 0)
                log.LogWarning("Consistency check {CheckId}: {Damaged} damaged copies, {Repaired} repaired, {Lost} packs without a sound copy, {Backups} backups requested",
                    checkId, damaged.Count, repaired.Count, unrecoverable.Count, requested.Count);
            return completed;
        }
    }

    /// <summary>What the check found on one copy of a point; and, if every damaged pack of it was repaired, that it is sound now.</summary>
    private static void Record(
        IDocumentSession session, RecoveryPointPacks point, StorageTier tier, HashSet<string> checkedPacks, TierCheckResult result,
        IEnumerable<PackRepaired> repaired, DateTimeOffset now)
    {
        var mine = point.Packs.Where(checkedPacks.Contains).ToList();
        if (mine.Count == 0) return;
        var found = result.Damaged.Where(d => point.Packs.Contains(d.PackId)).Select(d => new DamagedPack(d.PackId, d.Problem)).ToList();
        var findings = ConsistencyCheck.Findings(point.Id, tier, mine.Count, found, repaired.Select(r => r.PackId).ToHashSet(StringComparer.Ordinal), Actor, now);
        if (findings.Length > 0) session.Events.Append(point.Id, findings);
    }

    /// <summary>Rewrites the disk copy from the vault; false when the vault has no sound copy either (the write verifies it).</summary>
    private async Task<bool> FromVaultAsync(string packId, CancellationToken ct)
    {
        if (await vault.PackLengthAsync(packId, ct) is not { } length) return false;
        try
        {
            await using var blob = await vault.OpenPackAsync(packId, ct);
            await disk.ReplacePackAsync(packId, blob, length, ct);
            log.LogWarning("Pack {PackId} repaired on disk from the vault", packId);
            return true;
        }
        catch (InvalidDataException e)
        {
            log.LogError("Pack {PackId}: the vault's copy is no good either ({Problem})", packId, e.Message);
            return false;
        }
    }

    /// <summary>Uploads the disk copy over the vault's, once it is checked sound (it may not have been: its point left the disk).</summary>
    private async Task<bool> ToVaultAsync(string packId, IEnumerable<ChunkLocation> indexed, CancellationToken ct)
    {
        await using var file = disk.OpenPack(packId);
        if (await PackCheck.ProblemAsync(file, packId, indexed, ct) is { } problem)
        {
            log.LogError("Pack {PackId}: the disk's copy is no good either ({Problem})", packId, problem);
            return false;
        }
        file.Position = 0;
        await vault.UploadPackAsync(packId, file, ct);
        log.LogWarning("Pack {PackId} repaired in the vault from disk", packId);
        return true;
    }
}
