using Backup.Storage.Contracts;
using JasperFx.Events;
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
    public QueuedJobState State { get; set; } = QueuedJobState.Queued;
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

/// <summary>
/// Follows every kind of agent work through the events of its lifecycle (<see cref="IJobEvent"/>): requested (the kind builds
/// its queue entry), started, ended, lease expired, re-queued, released. A new kind implements those interfaces on its events
/// and adds nothing here.
/// </summary>
public sealed class AgentJobQueueProjection : MultiStreamProjection<QueuedJob, Guid>
{
    public AgentJobQueueProjection()
    {
        Identity<IJobEvent>(e => e.JobId);
        foreach (var type in typeof(IJobEvent).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false } && t.IsAssignableTo(typeof(IJobEvent))))
            IncludeType(type);
    }

    public override QueuedJob? Evolve(QueuedJob? job, Guid id, IEvent e) => (e.Data, job) switch
    {
        (IJobRequested requested, _) => requested.Queue(),
        (IJobStarted started, not null) => Started(job, started.StartedAt),
        (IJobEnded, not null) => Finished(job),
        (JobLeaseExpired expired, not null) => LeaseExpired(job, expired),
        (JobRequeued requeued, not null) => Requeued(job, requeued),
        (JobReleased, not null) => Released(job),
        _ => job,
    };

    private static QueuedJob Started(QueuedJob job, DateTimeOffset at)
    {
        job.State = QueuedJobState.Running;
        job.StartedAt = at;
        job.LeaseExpiresAt = null;
        job.NotBefore = null;
        return job;
    }

    private static QueuedJob Finished(QueuedJob job)
    {
        job.State = QueuedJobState.Finished;
        return job;
    }

    private static QueuedJob LeaseExpired(QueuedJob job, JobLeaseExpired e)
    {
        job.LeaseExpiries = e.Attempt;
        job.LeaseExpiresAt = null;
        return job;
    }

    private static QueuedJob Requeued(QueuedJob job, JobRequeued e)
    {
        job.State = QueuedJobState.Queued;
        job.NotBefore = e.NotBefore;
        job.StartedAt = null;
        return job;
    }

    private static QueuedJob Released(QueuedJob job)
    {
        job.State = QueuedJobState.Queued;
        job.NotBefore = null;
        job.StartedAt = null;
        job.LeaseExpiresAt = null;
        return job;
    }
}
