using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.Synchronising;
using Backup.Storage.Contracts;
using Marten.Events.Projections;

namespace Backup.Commands.Dispatching;

public enum QueuedJobState
{
    Queued = 1,
    Running = 2,
    Finished = 3,
}

/// <summary>
/// Command-side view of the work waiting for each agent. Inline, so a job is visible to its agent's next
/// poll as soon as the request that created it returns.
/// </summary>
public sealed class QueuedJob
{
    public Guid Id { get; set; }
    public Guid AgentId { get; set; }
    public JobKind Kind { get; set; }
    public QueuedJobState State { get; set; }
    /// <summary>Backups and restores: the recovery point; synchronisations: empty.</summary>
    public Guid RecoveryPointId { get; set; }

    /// <summary>Backups and synchronisations: the data source (empty on backups queued before it was recorded).</summary>
    public Guid DataSourceId { get; set; }
    public string Path { get; set; } = "";
    public DateTimeOffset QueuedAt { get; set; }

    /// <summary>Restores only: the items to restore (null = all) and what to do with items that already exist.</summary>
    public List<string>? Paths { get; set; }
    public ExistingItems IfExists { get; set; }

    /// <summary>
    /// Backups and synchronisations: the data source's include and exclude patterns, filled in when the job is claimed (the patterns in force
    /// when the backup starts, not when it was requested); not kept in the queue.
    /// </summary>
    public List<string>? Include { get; set; }
    public List<string>? Exclude { get; set; }

    /// <summary>When the current run was claimed (the started event's timestamp).</summary>
    public DateTimeOffset? StartedAt { get; set; }

    /// <summary>
    /// Running jobs: when the agent's lease runs out. Set at claim and moved by heartbeats as a plain document
    /// update, not an event (see <see cref="RenewJobLeaseHandler"/>); null means StartedAt + the lease duration.
    /// </summary>
    public DateTimeOffset? LeaseExpiresAt { get; set; }

    /// <summary>How many times the lease of this job expired.</summary>
    public int LeaseExpiries { get; set; }

    /// <summary>A re-queued job is not handed out before this.</summary>
    public DateTimeOffset? NotBefore { get; set; }
}

public sealed partial class AgentJobQueueProjection : MultiStreamProjection<QueuedJob, Guid>
{
    public AgentJobQueueProjection()
    {
        Identity<BackupRequested>(e => e.RecoveryPointId);
        Identity<BackupStarted>(e => e.RecoveryPointId);
        Identity<RecoveryPointCreated>(e => e.RecoveryPointId);
        Identity<RecoveryPointFailed>(e => e.RecoveryPointId);
        Identity<RestoreRequested>(e => e.RestoreId);
        Identity<RestoreStarted>(e => e.RestoreId);
        Identity<RestoreCompleted>(e => e.RestoreId);
        Identity<RestoreFailed>(e => e.RestoreId);
        Identity<SyncRequested>(e => e.SyncId);
        Identity<SyncStarted>(e => e.SyncId);
        Identity<ReplicaSynchronised>(e => e.SyncId);
        Identity<SyncFailed>(e => e.SyncId);
        Identity<JobLeaseExpired>(e => e.JobId);
        Identity<JobRequeued>(e => e.JobId);
        Identity<JobReleased>(e => e.JobId);
    }

    public static QueuedJob Create(BackupRequested e) => new()
    {
        Id = e.RecoveryPointId, AgentId = e.AgentId, Kind = JobKind.Backup, State = QueuedJobState.Queued,
        RecoveryPointId = e.RecoveryPointId, DataSourceId = e.DataSourceId, Path = e.SourcePath, QueuedAt = e.RequestedAt,
    };

    public static QueuedJob Create(SyncRequested e) => new()
    {
        Id = e.SyncId, AgentId = e.AgentId, Kind = JobKind.Synchronisation, State = QueuedJobState.Queued,
        DataSourceId = e.DataSourceId, Path = e.SourcePath, QueuedAt = e.RequestedAt,
    };

    public static QueuedJob Create(RestoreRequested e) => new()
    {
        Id = e.RestoreId, AgentId = e.AgentId, Kind = JobKind.Restore, State = QueuedJobState.Queued,
        RecoveryPointId = e.RecoveryPointId, Path = e.TargetPath, QueuedAt = e.RequestedAt,
        Paths = e.Paths?.ToList(), IfExists = e.IfExists,
    };

    public static void Apply(BackupStarted e, QueuedJob job) => Started(job, e.StartedAt);
    public static void Apply(RecoveryPointCreated _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(RecoveryPointFailed _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(RestoreStarted e, QueuedJob job) => Started(job, e.StartedAt);
    public static void Apply(RestoreCompleted _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(RestoreFailed _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(SyncStarted e, QueuedJob job) => Started(job, e.StartedAt);
    public static void Apply(ReplicaSynchronised _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(SyncFailed _, QueuedJob job) => job.State = QueuedJobState.Finished;

    public static void Apply(JobLeaseExpired e, QueuedJob job)
    {
        job.LeaseExpiries = e.Attempt;
        job.LeaseExpiresAt = null;
    }

    public static void Apply(JobRequeued e, QueuedJob job)
    {
        job.State = QueuedJobState.Queued;
        job.NotBefore = e.NotBefore;
        job.StartedAt = null;
    }

    public static void Apply(JobReleased _, QueuedJob job)
    {
        job.State = QueuedJobState.Queued;
        job.NotBefore = null;
        job.StartedAt = null;
        job.LeaseExpiresAt = null;
    }

    private static void Started(QueuedJob job, DateTimeOffset at)
    {
        job.State = QueuedJobState.Running;
        job.StartedAt = at;
        job.LeaseExpiresAt = null;
        job.NotBefore = null;
    }
}
