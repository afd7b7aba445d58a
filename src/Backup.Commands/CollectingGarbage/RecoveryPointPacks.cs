using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
using Marten.Events.Projections;

namespace Backup.Commands.CollectingGarbage;

/// <summary>
/// Which packs a recovery point holds or is writing, and which tiers still need them: the input of garbage collection.
/// Inline, so it is exactly as current as the events a collector reads it with (under the collection lock).
/// </summary>
public sealed class RecoveryPointPacks
{
    public Guid Id { get; set; }
    public Guid DataSourceId { get; set; }
    public RecoveryPointStatus Status { get; set; }

    /// <summary>Packs this run wrote to disk (what a running backup may still reference).</summary>
    public List<string> Written { get; set; } = [];

    /// <summary>Packs the created recovery point references (its manifest's list).</summary>
    public List<string> Packs { get; set; } = [];

    /// <summary>When the recovery point was created (null on documents projected before this was recorded).</summary>
    public DateTimeOffset? CreatedAt { get; set; }
    public bool ExpiredOnDisk { get; set; }
    public bool ExpiredInVault { get; set; }
    public bool InVault { get; set; }
    public bool Deleted { get; set; }
    public bool DiskReclaimed { get; set; }
    public bool VaultReclaimed { get; set; }

    public bool Running => Status is RecoveryPointStatus.Requested or RecoveryPointStatus.Running;

    /// <summary>
    /// The disk copy is needed while it is kept there, and after that until the vault holds it (the copy is made from
    /// disk) or the vault's retention no longer wants it.
    /// </summary>
    public bool NeedsDisk => Status == RecoveryPointStatus.Created && !Deleted && (!ExpiredOnDisk || (!InVault && !ExpiredInVault));

    /// <summary>The vault copy is needed (or will be made) until the vault's retention expires it.</summary>
    public bool NeedsVault => Status == RecoveryPointStatus.Created && !Deleted && !ExpiredInVault;
}

public sealed partial class RecoveryPointPacksProjection : MultiStreamProjection<RecoveryPointPacks, Guid>
{
    public RecoveryPointPacksProjection()
    {
        Identity<BackupRequested>(e => e.RecoveryPointId);
        Identity<BackupStarted>(e => e.RecoveryPointId);
        Identity<PackWrittenToDisk>(e => e.RecoveryPointId);
        Identity<RecoveryPointCreated>(e => e.RecoveryPointId);
        Identity<RecoveryPointFailed>(e => e.RecoveryPointId);
        Identity<RecoveryPointExpired>(e => e.RecoveryPointId);
        Identity<VaultTransferCompleted>(e => e.RecoveryPointId);
        Identity<RecoveryPointDeleted>(e => e.RecoveryPointId);
        Identity<JobRequeued>(e => e.JobId);
        Identity<JobReleased>(e => e.JobId);
        Identities<PacksDeleted>(e => e.ManifestsOf);
    }

    public static RecoveryPointPacks Create(BackupRequested e) => new() { Id = e.RecoveryPointId, DataSourceId = e.DataSourceId, Status = RecoveryPointStatus.Requested };

    public static void Apply(BackupStarted _, RecoveryPointPacks p) => p.Status = RecoveryPointStatus.Running;

    public static void Apply(PackWrittenToDisk e, RecoveryPointPacks p)
    {
        if (!p.Written.Contains(e.PackId)) p.Written.Add(e.PackId);
    }

    public static void Apply(RecoveryPointCreated e, RecoveryPointPacks p)
    {
        p.Status = RecoveryPointStatus.Created;
        p.Packs = [.. e.PackIds];
        p.Written = [];
        p.CreatedAt = e.CreatedAt;
    }

    public static void Apply(RecoveryPointFailed _, RecoveryPointPacks p)
    {
        p.Status = RecoveryPointStatus.Failed;
        p.Written = [];
    }

    public static void Apply(RecoveryPointExpired e, RecoveryPointPacks p)
    {
        if (e.Tier == StorageTier.Disk) p.ExpiredOnDisk = true;
        else p.ExpiredInVault = true;
    }

    public static void Apply(VaultTransferCompleted _, RecoveryPointPacks p) => p.InVault = true;

    /// <summary>Deleted with its data source ("delete data"): no tier needs it any more.</summary>
    public static void Apply(RecoveryPointDeleted _, RecoveryPointPacks p)
    {
        p.Deleted = true;
        p.Written = [];
    }

    public static void Apply(JobRequeued _, RecoveryPointPacks p) => p.Status = RecoveryPointStatus.Requested;
    public static void Apply(JobReleased _, RecoveryPointPacks p) => p.Status = RecoveryPointStatus.Requested;

    public static void Apply(PacksDeleted e, RecoveryPointPacks p)
    {
        if (e.Tier == StorageTier.Disk) p.DiskReclaimed = true;
        else p.VaultReclaimed = true;
    }

    // Lease events of restore jobs and manifests of unknown points land on documents no BackupRequested created: drop them.
    public static bool ShouldDelete(JobRequeued _, RecoveryPointPacks p) => p.Id == Guid.Empty || p.Status == 0;
    public static bool ShouldDelete(JobReleased _, RecoveryPointPacks p) => p.Id == Guid.Empty || p.Status == 0;
    public static bool ShouldDelete(PacksDeleted _, RecoveryPointPacks p) => p.Status == 0;
}
