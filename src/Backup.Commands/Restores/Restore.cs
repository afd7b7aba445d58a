using System.Text.Json.Serialization;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;

namespace Backup.Commands.Restores;

[JsonConverter(typeof(JsonStringEnumConverter<RestoreSource>))]
public enum RestoreSource
{
    Disk = 1,
    Vault = 2,
}

/// <summary>What a restore does when an item it would write already exists (Azure Backup's recovery options).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<IfItemExists>))]
public enum IfItemExists
{
    Overwrite = 0,
    Skip = 1,
    KeepBoth = 2,
}

/// <summary><see cref="Paths"/>: the items to restore (relative, '/'-separated; a directory brings everything under it); null = the whole recovery point.</summary>
public sealed record RestoreRequested(
    Guid RestoreId, Guid RecoveryPointId, Guid DataSourceId, Guid AgentId, RestoreSource Source, string TargetPath, string RequestedBy,
    DateTimeOffset RequestedAt, IReadOnlyList<string>? Paths = null, IfItemExists IfExists = IfItemExists.Overwrite);

public sealed record RestoreStarted(Guid RestoreId, Guid AgentId, DateTimeOffset StartedAt);

/// <summary><see cref="SkippedExisting"/>: items left as they were because they existed and the request said Skip.</summary>
public sealed record RestoreCompleted(Guid RestoreId, Guid RecoveryPointId, int Files, long Bytes, DateTimeOffset CompletedAt, int SkippedExisting = 0);

public sealed record RestoreFailed(Guid RestoreId, Guid RecoveryPointId, string Reason, DateTimeOffset FailedAt);

public enum RestoreStatus
{
    Requested = 1,
    Running = 2,
    Completed = 3,
    Failed = 4,
    /// <summary>Completed, but some items could not be written (<c>RestoreItemsFailed</c> lists them).</summary>
    CompletedWithErrors = 5,
}

public sealed record Restore(Guid Id, Guid RecoveryPointId, Guid AgentId, RestoreSource Source, string TargetPath, RestoreStatus Status, int LeaseExpiries = 0)
{
    public static Restore? Next(Restore? state, object @event) => @event switch
    {
        RestoreRequested e => new Restore(e.RestoreId, e.RecoveryPointId, e.AgentId, e.Source, e.TargetPath, RestoreStatus.Requested),
        RestoreStarted when state is not null => state with { Status = RestoreStatus.Running },
        RestoreCompleted when state is not null => state with { Status = RestoreStatus.Completed },
        RestoreFailed when state is not null => state with { Status = RestoreStatus.Failed },
        JobLeaseExpired when state is not null => state with { LeaseExpiries = state.LeaseExpiries + 1 },
        JobRequeued when state is not null => state with { Status = RestoreStatus.Requested },
        JobReleased when state is not null => state with { Status = RestoreStatus.Requested },
        _ => state,
    };

    public static RestoreStarted Start(Restore? restore, Guid restoreId, Guid agentId, DateTimeOffset now)
    {
        var r = OwnedBy(restore, restoreId, agentId);
        if (r.Status != RestoreStatus.Requested) throw new ConflictException($"Restore {restoreId} is {r.Status}, not waiting to start.");
        return new RestoreStarted(r.Id, agentId, now);
    }

    public static RestoreCompleted Complete(Restore? restore, Guid restoreId, Guid agentId, int files, long bytes, int skippedExisting, DateTimeOffset now)
    {
        var r = Running(restore, restoreId, agentId);
        return new RestoreCompleted(r.Id, r.RecoveryPointId, files, bytes, now, skippedExisting);
    }

    public static RestoreFailed Fail(Restore? restore, Guid restoreId, Guid agentId, string reason, DateTimeOffset now)
    {
        var r = OwnedBy(restore, restoreId, agentId);
        if (r.Status is RestoreStatus.Completed or RestoreStatus.Failed) throw new ConflictException($"Restore {restoreId} has already ended ({r.Status}).");
        return new RestoreFailed(r.Id, r.RecoveryPointId, reason, now);
    }

    /// <summary>A restore still waiting for its agent will not run (it was not picked up in time). Null when it is no longer waiting.</summary>
    public static RestoreFailed? Cancel(Restore? restore, string reason, DateTimeOffset now) =>
        restore is { Status: RestoreStatus.Requested } ? new RestoreFailed(restore.Id, restore.RecoveryPointId, reason, now) : null;

    /// <summary>A heartbeat: only the owning agent, only while the restore runs.</summary>
    public static void RenewLease(Restore? restore, Guid restoreId, Guid agentId) => Running(restore, restoreId, agentId);

    /// <summary>The owning agent gives the running restore back (it is stopping): queued again at once.</summary>
    public static JobReleased Release(Restore? restore, Guid restoreId, Guid agentId, string reason, DateTimeOffset now) =>
        new(Running(restore, restoreId, agentId).Id, agentId, reason, now);

    /// <summary>The lease of the running restore ran out: re-queue it, or fail it after <see cref="JobLeaseOptions.MaxAttempts"/> expiries.</summary>
    public static object[] ExpireLease(Restore? restore, Guid restoreId, JobLeaseOptions options, DateTimeOffset now)
    {
        if (restore is null) throw new NotFoundException("Restore", restoreId);
        if (restore.Status != RestoreStatus.Running) throw new ConflictException($"Restore {restoreId} is {restore.Status}, not running.");
        return JobLease.Expire(restore.Id, restore.AgentId, restore.LeaseExpiries + 1, options, now,
            reason => new RestoreFailed(restore.Id, restore.RecoveryPointId, reason, now));
    }

    public static Restore Running(Restore? restore, Guid restoreId, Guid agentId)
    {
        var r = OwnedBy(restore, restoreId, agentId);
        if (r.Status != RestoreStatus.Running) throw new ConflictException($"Restore {restoreId} is {r.Status}, not running.");
        return r;
    }

    private static Restore OwnedBy(Restore? restore, Guid id, Guid agentId)
    {
        if (restore is null) throw new NotFoundException("Restore", id);
        if (restore.AgentId != agentId) throw new ForbiddenException($"Restore {id} belongs to another agent.");
        return restore;
    }
}
