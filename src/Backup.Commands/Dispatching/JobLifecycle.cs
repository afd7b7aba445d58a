using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Storage.Contracts;

namespace Backup.Commands.Dispatching;

/// <summary>The lease of a running job ran out: its agent stopped renewing it (crashed, lost, cut off). <see cref="Attempt"/> counts from 1.</summary>
public sealed record JobLeaseExpired(Guid JobId, Guid AgentId, int Attempt, string Reason, DateTimeOffset ExpiredAt) : IJobEvent;

/// <summary>A job whose lease expired goes back to its agent's queue; it is not handed out before <see cref="NotBefore"/>.</summary>
public sealed record JobRequeued(Guid JobId, Guid AgentId, int Attempt, DateTimeOffset NotBefore, DateTimeOffset RequeuedAt) : IJobEvent;

/// <summary>
/// The agent gave its running job back (it is stopping): the job is queued again at once, for its next poll. Not a lease
/// expiry: the agent said so, so it costs no attempt and no backoff.
/// </summary>
public sealed record JobReleased(Guid JobId, Guid AgentId, string Reason, DateTimeOffset ReleasedAt) : IJobEvent;

/// <summary>
/// An event of a job's lifecycle, which the job queue (<see cref="AgentJobQueueProjection"/>) follows whatever the kind. A
/// kind's events name the job by their own id (<c>RecoveryPointId</c>, <c>RestoreId</c>, …) and implement <see cref="JobId"/>
/// explicitly, so the stored JSON stays as it was.
/// </summary>
public interface IJobEvent
{
    Guid JobId { get; }
}

/// <summary>The event that asks for a job (a backup's <c>BackupRequested</c>, …): it opens the job's stream and queues it for its agent.</summary>
public interface IJobRequested : IJobEvent
{
    /// <summary>The job as its agent's queue holds it until it ends.</summary>
    QueuedJob Queue();

    /// <summary>The job as the job history shows it when requested.</summary>
    JobRequest Describe();
}

/// <summary>
/// What the job history records of a request. <see cref="GroupId"/> null: the request does not name the group, which the
/// history then takes from the recovery point's <c>BackupRequested</c>. <see cref="RecoveryPointId"/> empty: the job concerns none.
/// </summary>
public sealed record JobRequest(
    JobKind Kind, Guid AgentId, Guid DataSourceId, Guid? GroupId, Guid RecoveryPointId, StorageTier Tier, string RequestedBy, DateTimeOffset RequestedAt);

/// <summary>Marks the event a job's agent appends when it claims the job (a backup's <c>BackupStarted</c>, …).</summary>
public interface IJobStarted : IJobEvent
{
    DateTimeOffset StartedAt { get; }
}

/// <summary>
/// One pack of a running job landed on the server's disk: the job history counts it as progress. Not an <see cref="IJobEvent"/>:
/// the queue has nothing to do with it, and an inline projection that followed it would write its entry once per pack.
/// </summary>
public interface IJobPackWritten
{
    Guid JobId { get; }
    long Bytes { get; }
}

/// <summary>Marks the events that end a job, whether it succeeded or failed.</summary>
public interface IJobEnded : IJobEvent
{
    /// <summary>The job's end as the job history shows it.</summary>
    JobOutcome Outcome();
}

/// <summary>
/// How a job ended. <see cref="FailureReason"/> null: it succeeded. <see cref="Files"/> and <see cref="BytesRead"/>: what it read
/// of its data source, or wrote (a restore); <see cref="Bytes"/>: the bytes it moved in all, when the end says (null: the sum
/// of its packs).
/// </summary>
public sealed record JobOutcome(DateTimeOffset At, string? FailureReason = null, int? Files = null, long? BytesRead = null, long? Bytes = null)
{
    public static JobOutcome Failed(string reason, DateTimeOffset at) => new(at, reason);
}

public enum JobPhase
{
    /// <summary>Waiting for its agent (again, after a lost lease or a release).</summary>
    Requested = 1,
    Running = 2,
    Ended = 3,
}

/// <summary>Where a job stands in the lifecycle every kind of agent work shares, and how often its lease ran out.</summary>
public readonly record struct JobLease(JobPhase Phase, int Expiries)
{
    public static JobLease Requested => new(JobPhase.Requested, 0);

    /// <summary>The lease fold, the same for every kind: claim, end, expiry, re-queue and release.</summary>
    public JobLease Next(object @event) => @event switch
    {
        IJobStarted => this with { Phase = JobPhase.Running },
        IJobEnded => this with { Phase = JobPhase.Ended },
        JobLeaseExpired => this with { Expiries = Expiries + 1 },
        JobRequeued or JobReleased => this with { Phase = JobPhase.Requested },
        _ => this,
    };
}

/// <summary>
/// A job aggregate (a backup, a synchronisation, a restore, …): its stream's state folded by <see cref="Next"/>, with the
/// <see cref="Lease"/> every kind shares, and the two events only its kind can build. The lease rules themselves are
/// <see cref="JobLifecycle"/>'s; a kind registers in <see cref="JobKinds"/>.
/// </summary>
public interface IJob<TSelf> where TSelf : class, IJob<TSelf>
{
    Guid Id { get; }
    Guid AgentId { get; }
    JobLease Lease { get; }

    /// <summary>The kind's own word for where the job stands (Created, Synchronised, Completed, …), for messages.</summary>
    string StatusName { get; }

    static abstract JobKind Kind { get; }

    /// <summary>The job as a message names it ("Backup"), and as a 404 names its resource ("Recovery point").</summary>
    static abstract string Noun { get; }
    static abstract string Resource { get; }

    static abstract TSelf? Next(TSelf? state, object @event);
    static abstract object Started(TSelf job, Guid agentId, DateTimeOffset now);
    static abstract object Failed(TSelf job, string reason, DateTimeOffset now);
}

/// <summary>A job that reads a data source (backups and synchronisations): its claim checks the source is still protected.</summary>
public interface IDataSourceJob
{
    Guid DataSourceId { get; }
}

/// <summary>A job whose agent uploads packs to the server's disk: the disk-write event for one, or null when it is recorded already.</summary>
public interface IPackingJob
{
    object? RecordPack(string packId, long bytes, int chunkCount, DateTimeOffset now);
}

public sealed class JobLeaseOptions
{
    public const string Section = "Backup:JobLeases";

    /// <summary>How long a claimed job stays the agent's without a heartbeat; agents renew every third of it.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How often the worker looks for expired leases.</summary>
    public TimeSpan ReaperInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Expiries after which the job fails instead of being queued again.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Wait before the first re-queue is handed out; doubled per further attempt, up to <see cref="MaxRetryBackoff"/>.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan MaxRetryBackoff { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A job its agent has not claimed this long after it was queued (or, after a lost lease, after it could be claimed
    /// again) fails: the agent is off or cut off, and a backup taken hours late is not the one the schedule wanted.
    /// </summary>
    public TimeSpan PickupTimeout { get; set; } = TimeSpan.FromHours(4);
}

/// <summary>
/// The lease rules of every kind of agent work, written once: claim (start), owned-by, running, heartbeat, release,
/// expiry with re-queue or "agent lost", cancel while waiting, fail. Pure: each returns events or throws the refusal.
/// </summary>
public static class JobLifecycle
{
    public static string AgentLostReason(int expiries) => $"agent lost: lease expired {expiries} time{(expiries == 1 ? "" : "s")}";

    /// <summary>Why a job failed that its agent never claimed in time, with when the agent was last heard of.</summary>
    public static string NotPickedUpReason(TimeSpan timeout, DateTimeOffset waitingSince, DateTimeOffset? lastPolledAt) =>
        $"agent did not pick the job up within {timeout} of {waitingSince:O} (last poll: {(lastPolledAt is { } at ? at.ToString("O") : "never")})";

    public static TimeSpan Backoff(int attempt, TimeSpan first, TimeSpan max)
    {
        var factor = Math.Pow(2, Math.Clamp(attempt - 1, 0, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(first.Ticks * factor, max.Ticks));
        return delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
    }

    /// <summary>Folds a job's stream: the kind's own transition, then the shared lease.</summary>
    public static T? Fold<T>(T? state, object @event, Func<T?, object, T?> kindNext, Func<T, JobLease, T> withLease) where T : class, IJob<T>
    {
        var next = kindNext(state, @event);
        if (next is null) return null;
        var lease = next.Lease.Next(@event);
        return lease == next.Lease ? next : withLease(next, lease);
    }

    /// <summary>The claim: only the job's agent, only while it waits.</summary>
    public static object Start<T>(T? job, Guid id, Guid agentId, DateTimeOffset now) where T : class, IJob<T>
    {
        var j = OwnedBy(job, id, agentId);
        if (j.Lease.Phase != JobPhase.Requested) throw new ConflictException($"{T.Noun} {id} is {j.StatusName}, not waiting to start.");
        return T.Started(j, agentId, now);
    }

    /// <summary>The agent reports the job could not be done: only its own, only before it ended.</summary>
    public static object Fail<T>(T? job, Guid id, Guid agentId, string reason, DateTimeOffset now) where T : class, IJob<T>
    {
        var j = OwnedBy(job, id, agentId);
        if (j.Lease.Phase == JobPhase.Ended) throw new ConflictException($"{T.Noun} {id} has already ended ({j.StatusName}).");
        return T.Failed(j, reason, now);
    }

    /// <summary>A job still waiting for its agent will not run (its data source was removed, it was not picked up in time). Null when it is no longer waiting.</summary>
    public static object? Cancel<T>(T? job, string reason, DateTimeOffset now) where T : class, IJob<T> =>
        job is { Lease.Phase: JobPhase.Requested } ? T.Failed(job, reason, now) : null;

    /// <summary>A heartbeat, and the guard of everything an agent sends for its job (packs, commit): only the owning agent, only while the job runs.</summary>
    public static T Running<T>(T? job, Guid id, Guid agentId) where T : class, IJob<T>
    {
        var j = OwnedBy(job, id, agentId);
        if (j.Lease.Phase != JobPhase.Running) throw new ConflictException($"{T.Noun} {id} is {j.StatusName}, not running.");
        return j;
    }

    /// <summary>The owning agent gives the running job back (it is stopping): queued again at once.</summary>
    public static JobReleased Release<T>(T? job, Guid id, Guid agentId, string reason, DateTimeOffset now) where T : class, IJob<T> =>
        new(Running(job, id, agentId).Id, agentId, reason, now);

    /// <summary>The lease of the running job ran out: re-queue it with backoff, or fail it after <see cref="JobLeaseOptions.MaxAttempts"/> expiries.</summary>
    public static object[] ExpireLease<T>(T? job, Guid id, JobLeaseOptions options, DateTimeOffset now) where T : class, IJob<T>
    {
        if (job is null) throw new NotFoundException(T.Resource, id);
        if (job.Lease.Phase != JobPhase.Running) throw new ConflictException($"{T.Noun} {id} is {job.StatusName}, not running.");
        var attempt = job.Lease.Expiries + 1;
        var expired = new JobLeaseExpired(job.Id, job.AgentId, attempt, $"no heartbeat from agent {job.AgentId} before the lease ran out", now);
        if (attempt >= Math.Max(1, options.MaxAttempts)) return [expired, T.Failed(job, AgentLostReason(attempt), now)];
        return [expired, new JobRequeued(job.Id, job.AgentId, attempt, now + Backoff(attempt, options.RetryBackoff, options.MaxRetryBackoff), now)];
    }

    public static T OwnedBy<T>(T? job, Guid id, Guid agentId) where T : class, IJob<T>
    {
        if (job is null) throw new NotFoundException(T.Resource, id);
        if (job.AgentId != agentId) throw new ForbiddenException($"{T.Noun} {id} belongs to another agent.");
        return job;
    }
}
