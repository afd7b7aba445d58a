using Backup.Commands.Common;
using Backup.Commands.Dispatching;

namespace Backup.Commands.Synchronising;

/// <summary>
/// A synchronisation of one data source was asked for (a short-term policy's sync slot that is not a recovery-point time):
/// its agent brings the server's copy of the data source up to date (new chunks, packed, to the server's disk) without
/// creating a recovery point, so the next recovery point has little left to send.
/// </summary>
public sealed record SyncRequested(Guid SyncId, Guid DataSourceId, Guid GroupId, Guid AgentId, string SourcePath, string RequestedBy, DateTimeOffset RequestedAt);

public sealed record SyncStarted(Guid SyncId, Guid AgentId, DateTimeOffset StartedAt);

/// <summary>One pack of a synchronisation landed on the backup server's local disk store (a "disk write").</summary>
public sealed record SyncPackWrittenToDisk(Guid SyncId, string PackId, long Bytes, int ChunkCount, DateTimeOffset WrittenAt);

/// <summary>
/// The server's copy of the data source is as the agent found it: every chunk the tree references is on the server's disk,
/// in <see cref="PackIds"/>. No recovery point: garbage collection keeps these packs until a recovery point taken after
/// this synchronisation exists.
/// </summary>
public sealed record ReplicaSynchronised(
    Guid SyncId, Guid DataSourceId, int Files, int Directories, int SkippedItems, long BytesRead, IReadOnlyList<string> PackIds, long BytesOnDisk,
    DateTimeOffset SynchronisedAt);

public sealed record SyncFailed(Guid SyncId, string Reason, DateTimeOffset FailedAt);

public enum SyncStatus
{
    Requested = 1,
    Running = 2,
    Synchronised = 3,
    Failed = 4,
}

/// <summary>The decider of one synchronisation job: the same lease rules as a backup's (claim, heartbeat, release, expiry).</summary>
public sealed record Synchronisation(Guid Id, Guid DataSourceId, Guid AgentId, SyncStatus Status, IReadOnlySet<string> PacksWritten, int LeaseExpiries = 0)
{
    public static Synchronisation? Next(Synchronisation? state, object @event) => @event switch
    {
        SyncRequested e => new Synchronisation(e.SyncId, e.DataSourceId, e.AgentId, SyncStatus.Requested, new HashSet<string>()),
        SyncStarted when state is not null => state with { Status = SyncStatus.Running },
        SyncPackWrittenToDisk e when state is not null => state with { PacksWritten = new HashSet<string>(state.PacksWritten) { e.PackId } },
        ReplicaSynchronised when state is not null => state with { Status = SyncStatus.Synchronised },
        SyncFailed when state is not null => state with { Status = SyncStatus.Failed },
        JobLeaseExpired when state is not null => state with { LeaseExpiries = state.LeaseExpiries + 1 },
        JobRequeued when state is not null => state with { Status = SyncStatus.Requested },
        JobReleased when state is not null => state with { Status = SyncStatus.Requested },
        _ => state,
    };

    public static SyncStarted Start(Synchronisation? sync, Guid syncId, Guid agentId, DateTimeOffset now)
    {
        var s = OwnedBy(sync, syncId, agentId);
        if (s.Status != SyncStatus.Requested) throw new ConflictException($"Synchronisation {syncId} is {s.Status}, not waiting to start.");
        return new SyncStarted(s.Id, agentId, now);
    }

    /// <summary>Null when the pack is already recorded for this run (an agent retrying an upload is not a second disk write).</summary>
    public static SyncPackWrittenToDisk? RecordPack(Synchronisation? sync, Guid syncId, Guid agentId, string packId, long bytes, int chunkCount, DateTimeOffset now)
    {
        var s = Running(sync, syncId, agentId);
        return s.PacksWritten.Contains(packId) ? null : new SyncPackWrittenToDisk(s.Id, packId, bytes, chunkCount, now);
    }

    public static ReplicaSynchronised Complete(
        Synchronisation? sync, Guid syncId, Guid agentId, int files, int directories, int skipped, long bytesRead, IReadOnlyList<string> packIds,
        long bytesOnDisk, DateTimeOffset now)
    {
        var s = Running(sync, syncId, agentId);
        return new ReplicaSynchronised(s.Id, s.DataSourceId, files, directories, skipped, bytesRead, packIds, bytesOnDisk, now);
    }

    public static SyncFailed Fail(Synchronisation? sync, Guid syncId, Guid agentId, string reason, DateTimeOffset now)
    {
        var s = OwnedBy(sync, syncId, agentId);
        if (s.Status is SyncStatus.Synchronised or SyncStatus.Failed) throw new ConflictException($"Synchronisation {syncId} has already ended ({s.Status}).");
        return new SyncFailed(s.Id, reason, now);
    }

    /// <summary>Its data source was removed: a synchronisation still waiting for its agent will not run. Null when it is no longer waiting.</summary>
    public static SyncFailed? Cancel(Synchronisation? sync, string reason, DateTimeOffset now) =>
        sync is { Status: SyncStatus.Requested } ? new SyncFailed(sync.Id, reason, now) : null;

    /// <summary>A heartbeat: only the owning agent, only while the synchronisation runs.</summary>
    public static void RenewLease(Synchronisation? sync, Guid syncId, Guid agentId) => Running(sync, syncId, agentId);

    /// <summary>The owning agent gives the running synchronisation back (it is stopping): queued again at once.</summary>
    public static JobReleased Release(Synchronisation? sync, Guid syncId, Guid agentId, string reason, DateTimeOffset now) =>
        new(Running(sync, syncId, agentId).Id, agentId, reason, now);

    /// <summary>The lease ran out: re-queue it, or fail it after <see cref="JobLeaseOptions.MaxAttempts"/> expiries.</summary>
    public static object[] ExpireLease(Synchronisation? sync, Guid syncId, JobLeaseOptions options, DateTimeOffset now)
    {
        if (sync is null) throw new NotFoundException("Synchronisation", syncId);
        if (sync.Status != SyncStatus.Running) throw new ConflictException($"Synchronisation {syncId} is {sync.Status}, not running.");
        return JobLease.Expire(sync.Id, sync.AgentId, sync.LeaseExpiries + 1, options, now, reason => new SyncFailed(sync.Id, reason, now));
    }

    private static Synchronisation Running(Synchronisation? sync, Guid id, Guid agentId)
    {
        var s = OwnedBy(sync, id, agentId);
        if (s.Status != SyncStatus.Running) throw new ConflictException($"Synchronisation {id} is {s.Status}, not running.");
        return s;
    }

    private static Synchronisation OwnedBy(Synchronisation? sync, Guid id, Guid agentId)
    {
        if (sync is null) throw new NotFoundException("Synchronisation", id);
        if (sync.AgentId != agentId) throw new ForbiddenException($"Synchronisation {id} belongs to another agent.");
        return sync;
    }
}
