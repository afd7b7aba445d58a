using Backup.Commands.Dispatching;
using Backup.Commands.Synchronising;
using Marten.Events.Projections;

namespace Backup.Commands.CollectingGarbage;

/// <summary>
/// The packs one synchronisation wrote and, once it ended, the packs its copy of the data source references: what garbage
/// collection must keep for the next recovery point: the latest synchronisation's packs of each data source until a
/// recovery point created after it exists, and the packs of running ones. Inline, like <see cref="RecoveryPointPacks"/>.
/// The table stays small: a failed synchronisation's document is deleted by the projection, and the collector deletes those
/// a later synchronisation of the same data source superseded (a 15-minute policy ends ~100 a day per data source).
/// </summary>
public sealed class SyncPacks
{
    public Guid Id { get; set; }
    public Guid DataSourceId { get; set; }
    public SyncStatus Status { get; set; }

    /// <summary>Packs this run wrote to disk (what a running synchronisation may still reference).</summary>
    public List<string> Written { get; set; } = [];

    /// <summary>Once synchronised: the packs the data source's copy references.</summary>
    public List<string> Packs { get; set; } = [];
    public DateTimeOffset? SynchronisedAt { get; set; }

    public bool Running => Status is SyncStatus.Requested or SyncStatus.Running;
}

public sealed partial class SyncPacksProjection : MultiStreamProjection<SyncPacks, Guid>
{
    public SyncPacksProjection()
    {
        Identity<SyncRequested>(e => e.SyncId);
        Identity<SyncStarted>(e => e.SyncId);
        Identity<SyncPackWrittenToDisk>(e => e.SyncId);
        Identity<ReplicaSynchronised>(e => e.SyncId);
        Identity<SyncFailed>(e => e.SyncId);
        Identity<JobRequeued>(e => e.JobId);
        Identity<JobReleased>(e => e.JobId);
    }

    public static SyncPacks Create(SyncRequested e) => new() { Id = e.SyncId, DataSourceId = e.DataSourceId, Status = SyncStatus.Requested };

    public static void Apply(SyncStarted _, SyncPacks p) => p.Status = SyncStatus.Running;

    public static void Apply(SyncPackWrittenToDisk e, SyncPacks p)
    {
        if (!p.Written.Contains(e.PackId)) p.Written.Add(e.PackId);
    }

    public static void Apply(ReplicaSynchronised e, SyncPacks p)
    {
        p.Status = SyncStatus.Synchronised;
        p.Packs = [.. e.PackIds];
        p.Written = [];
        p.SynchronisedAt = e.SynchronisedAt;
    }

    public static void Apply(JobRequeued _, SyncPacks p) => p.Status = SyncStatus.Requested;
    public static void Apply(JobReleased _, SyncPacks p) => p.Status = SyncStatus.Requested;

    /// <summary>A failed synchronisation holds nothing the collector must keep (what it wrote is garbage unless someone else references it).</summary>
    public static bool ShouldDelete(SyncFailed _, SyncPacks p) => true;

    // Lease events of backups and restores land on documents no SyncRequested created: drop them.
    public static bool ShouldDelete(JobRequeued _, SyncPacks p) => p.Id == Guid.Empty || p.Status == 0;
    public static bool ShouldDelete(JobReleased _, SyncPacks p) => p.Id == Guid.Empty || p.Status == 0;
}
