using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Marten.Events.Projections;

namespace Backup.Commands.Dispatching;

public enum QueuedJobKind
{
    Backup = 1,
    Restore = 2,
}

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
    public QueuedJobKind Kind { get; set; }
    public QueuedJobState State { get; set; }
    public Guid RecoveryPointId { get; set; }
    public string Path { get; set; } = "";
    public DateTimeOffset QueuedAt { get; set; }

    /// <summary>Restores only: the items to restore (null = all) and what to do with items that already exist.</summary>
    public List<string>? Paths { get; set; }
    public IfItemExists IfExists { get; set; }
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
    }

    public static QueuedJob Create(BackupRequested e) => new()
    {
        Id = e.RecoveryPointId, AgentId = e.AgentId, Kind = QueuedJobKind.Backup, State = QueuedJobState.Queued,
        RecoveryPointId = e.RecoveryPointId, Path = e.SourcePath, QueuedAt = e.RequestedAt,
    };

    public static QueuedJob Create(RestoreRequested e) => new()
    {
        Id = e.RestoreId, AgentId = e.AgentId, Kind = QueuedJobKind.Restore, State = QueuedJobState.Queued,
        RecoveryPointId = e.RecoveryPointId, Path = e.TargetPath, QueuedAt = e.RequestedAt,
        Paths = e.Paths?.ToList(), IfExists = e.IfExists,
    };

    public static void Apply(BackupStarted _, QueuedJob job) => job.State = QueuedJobState.Running;
    public static void Apply(RecoveryPointCreated _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(RecoveryPointFailed _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(RestoreStarted _, QueuedJob job) => job.State = QueuedJobState.Running;
    public static void Apply(RestoreCompleted _, QueuedJob job) => job.State = QueuedJobState.Finished;
    public static void Apply(RestoreFailed _, QueuedJob job) => job.State = QueuedJobState.Finished;
}
