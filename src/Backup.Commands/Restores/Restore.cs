using System.Text.Json.Serialization;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Storage.Contracts;

namespace Backup.Commands.Restores;

/// <summary><see cref="Paths"/>: the items to restore (relative, '/'-separated; a directory brings everything under it); null = the whole recovery point.</summary>
public sealed record RestoreRequested(
    Guid RestoreId, Guid RecoveryPointId, Guid DataSourceId, Guid AgentId, StorageTier Source, string TargetPath, string RequestedBy,
    DateTimeOffset RequestedAt, IReadOnlyList<string>? Paths = null, ExistingItems IfExists = ExistingItems.Overwrite) : IJobRequested
{
    Guid IJobEvent.JobId => RestoreId;

    public QueuedJob Queue() => new()
    {
        Id = RestoreId, AgentId = AgentId, Kind = JobKind.Restore, RecoveryPointId = RecoveryPointId, Path = TargetPath, QueuedAt = RequestedAt,
        Paths = Paths?.ToList(), IfExists = IfExists,
    };

    public JobRequest Describe() => new(JobKind.Restore, AgentId, DataSourceId, null, RecoveryPointId, Source, RequestedBy, RequestedAt);
}

public sealed record RestoreStarted(Guid RestoreId, Guid AgentId, DateTimeOffset StartedAt) : IJobStarted
{
    Guid IJobEvent.JobId => RestoreId;
}

/// <summary><see cref="SkippedExisting"/>: items left as they were because they existed and the request said Skip.</summary>
public sealed record RestoreCompleted(Guid RestoreId, Guid RecoveryPointId, int Files, long Bytes, DateTimeOffset CompletedAt, int SkippedExisting = 0) : IJobEnded
{
    Guid IJobEvent.JobId => RestoreId;

    public JobOutcome Outcome() => new(CompletedAt, Files: Files, Bytes: Bytes);
}

public sealed record RestoreFailed(Guid RestoreId, Guid RecoveryPointId, string Reason, DateTimeOffset FailedAt) : IJobEnded
{
    Guid IJobEvent.JobId => RestoreId;

    public JobOutcome Outcome() => JobOutcome.Failed(Reason, FailedAt);
}

public enum RestoreStatus
{
    Requested = 1,
    Running = 2,
    Completed = 3,
    Failed = 4,
    /// <summary>Completed, but some items could not be written (<c>RestoreItemsFailed</c> lists them).</summary>
    CompletedWithErrors = 5,
}

/// <summary>The decider of one restore job: the lease rules are every job's (<see cref="JobLifecycle"/>).</summary>
public sealed record Restore(Guid Id, Guid RecoveryPointId, Guid AgentId, StorageTier Source, string TargetPath, JobLease Lease, RestoreStatus? Outcome = null)
    : IJob<Restore>
{
    public static JobKind Kind => JobKind.Restore;
    public static string Noun => "Restore";
    public static string Resource => "Restore";

    public RestoreStatus Status => Outcome ?? (Lease.Phase == JobPhase.Running ? RestoreStatus.Running : RestoreStatus.Requested);
    public string StatusName => Status.ToString();

    public static Restore? Next(Restore? state, object @event) =>
        JobLifecycle.Fold(state, @event, Apply, (restore, lease) => restore with { Lease = lease });

    private static Restore? Apply(Restore? state, object @event) => @event switch
    {
        RestoreRequested e => new Restore(e.RestoreId, e.RecoveryPointId, e.AgentId, e.Source, e.TargetPath, JobLease.Requested),
        RestoreCompleted when state is not null => state with { Outcome = RestoreStatus.Completed },
        RestoreFailed when state is not null => state with { Outcome = RestoreStatus.Failed },
        _ => state,
    };

    public static object Started(Restore job, Guid agentId, DateTimeOffset now) => new RestoreStarted(job.Id, agentId, now);

    public static object Failed(Restore job, string reason, DateTimeOffset now) => new RestoreFailed(job.Id, job.RecoveryPointId, reason, now);

    public static RestoreCompleted Complete(Restore? restore, Guid restoreId, Guid agentId, int files, long bytes, int skippedExisting, DateTimeOffset now)
    {
        var r = JobLifecycle.Running(restore, restoreId, agentId);
        return new RestoreCompleted(r.Id, r.RecoveryPointId, files, bytes, now, skippedExisting);
    }
}
