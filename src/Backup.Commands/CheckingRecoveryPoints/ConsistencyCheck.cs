using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;

namespace Backup.Commands.CheckingRecoveryPoints;

/// <summary>The daily consistency check of both tiers is due (one stream per day: several workers start it once).</summary>
public sealed record ConsistencyCheckDue(Guid CheckId, DateOnly Day, DateTimeOffset DueAt);

/// <summary>A pack copy found missing or damaged on a tier.</summary>
public sealed record DamagedCopy(string PackId, StorageTier Tier, string Problem);

/// <summary>A damaged or missing pack copy on <see cref="Tier"/> rewritten from the sound copy on <see cref="From"/>, verified.</summary>
public sealed record PackRepaired(string PackId, StorageTier Tier, StorageTier From);

/// <summary>
/// What a consistency check found and did: every pack a kept recovery point needs was read back on each tier; damaged
/// copies were repaired from the other tier where it holds a sound copy; packs with no sound copy left were dropped from
/// the chunk index (so agents send their data again) and the data sources they belong to were backed up anew.
/// </summary>
public sealed record ConsistencyCheckCompleted(
    Guid CheckId, string Reason, int PacksChecked, long BytesChecked, IReadOnlyList<DamagedCopy> Damaged, IReadOnlyList<PackRepaired> Repaired,
    IReadOnlyList<string> Unrecoverable, IReadOnlyList<Guid> AffectedRecoveryPoints, IReadOnlyList<Guid> BackupsRequested, DateTimeOffset CompletedAt);

public static class ConsistencyCheck
{
    public static Guid DueId(DateOnly day) => DeterministicGuid.Create($"consistency-check:{day:yyyy-MM-dd}");

    /// <summary>The backup a check requests for a data source whose data it could not repair (one per check and source).</summary>
    public static Guid RepairBackupId(Guid checkId, Guid dataSourceId) => DeterministicGuid.Create($"consistency-repair:{checkId:N}:{dataSourceId:N}");

    /// <summary>The day's check, on its own stream (<see cref="DueId"/>): several workers start it once.</summary>
    public static ConsistencyCheckDue Due(DateOnly day, DateTimeOffset dueAt) => new(DueId(day), day, dueAt);

    /// <summary>
    /// What a check records on one copy of a recovery point it found damaged: the damage, then (when every damaged pack of
    /// that copy was repaired from the other tier) that the copy is sound again. Nothing for a copy found sound.
    /// </summary>
    public static object[] Findings(
        Guid recoveryPointId, StorageTier tier, int packsChecked, IReadOnlyList<DamagedPack> damaged, IReadOnlySet<string> repaired, string checkedBy,
        DateTimeOffset now)
    {
        if (damaged.Count == 0) return [];
        var found = new RecoveryPointChecked(recoveryPointId, tier, packsChecked, 0, damaged, checkedBy, now);
        return damaged.All(d => repaired.Contains(d.PackId))
            ? [found, new RecoveryPointChecked(recoveryPointId, tier, packsChecked, 0, [], checkedBy, now)]
            : [found];
    }
}
