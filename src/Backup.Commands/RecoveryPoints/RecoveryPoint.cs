using Backup.Commands.Common;
using Backup.Commands.Dispatching;

namespace Backup.Commands.RecoveryPoints;

public sealed record BackupRequested(Guid RecoveryPointId, Guid DataSourceId, Guid GroupId, Guid AgentId, string SourcePath, string RequestedBy, DateTimeOffset RequestedAt);

public sealed record BackupStarted(Guid RecoveryPointId, Guid AgentId, DateTimeOffset StartedAt);

/// <summary>One pack of backup data landed on the backup server's local disk store (a "disk write").</summary>
public sealed record PackWrittenToDisk(Guid RecoveryPointId, string PackId, long Bytes, int ChunkCount, string Sha256, DateTimeOffset WrittenAt);

public sealed record RecoveryPointCreated(
    Guid RecoveryPointId, Guid DataSourceId, int Files, int Directories, int SkippedItems, long BytesRead, long BytesStored,
    IReadOnlyList<string> PackIds, string ManifestSha256, DateTimeOffset CreatedAt);

/// <summary>An item the agent could not back up, and why.</summary>
public sealed record SkippedItemRecord(string Path, string Reason);

/// <summary>
/// The items a backup could not include, with the reasons (at most <see cref="RecoveryPoint.MaxSkippedRecorded"/>;
/// <see cref="Total"/> counts all); appended just before <see cref="RecoveryPointCreated"/>, which is then partial.
/// </summary>
public sealed record BackupItemsSkipped(Guid RecoveryPointId, IReadOnlyList<SkippedItemRecord> Items, int Total, DateTimeOffset RecordedAt);

public sealed record RecoveryPointFailed(Guid RecoveryPointId, string Reason, DateTimeOffset FailedAt);

/// <summary>Where a copy of a recovery point is kept.</summary>
public enum StorageTier
{
    Disk = 1,
    Vault = 2,
}

/// <summary>
/// The policy no longer keeps the recovery point on <see cref="Tier"/> (short-term range or the 64-point cap on disk, GFS in
/// the vault). Its packs go when no kept point needs them (garbage collection, PackCollector).
/// </summary>
public sealed record RecoveryPointExpired(Guid RecoveryPointId, StorageTier Tier, string Reason, DateTimeOffset ExpiredAt);

/// <summary>
/// The recovery point was deleted with its data source ("remove with delete data"): no tier offers it any more, and the
/// garbage collector treats its packs as no longer live. Appended once on every recovery point stream of the data source.
/// </summary>
public sealed record RecoveryPointDeleted(Guid RecoveryPointId, Guid DataSourceId, string Reason, DateTimeOffset DeletedAt);

public enum RecoveryPointStatus
{
    Requested = 1,
    Running = 2,
    Created = 3,
    Failed = 4,
}

public sealed record RecoveryPoint(
    Guid Id, Guid DataSourceId, Guid AgentId, RecoveryPointStatus Status,
    IReadOnlySet<string> PacksWritten, IReadOnlyList<string> PackIds, int LeaseExpiries = 0,
    bool ExpiredOnDisk = false, bool ExpiredInVault = false, bool Deleted = false, string SourcePath = "")
{
    public const int MaxSkippedRecorded = 1_000;

    public static RecoveryPoint? Next(RecoveryPoint? state, object @event) => @event switch
    {
        BackupRequested e => new RecoveryPoint(e.RecoveryPointId, e.DataSourceId, e.AgentId, RecoveryPointStatus.Requested, new HashSet<string>(), [], SourcePath: e.SourcePath),
        BackupStarted when state is not null => state with { Status = RecoveryPointStatus.Running },
        PackWrittenToDisk e when state is not null => state with { PacksWritten = new HashSet<string>(state.PacksWritten) { e.PackId } },
        RecoveryPointCreated e when state is not null => state with { Status = RecoveryPointStatus.Created, PackIds = e.PackIds },
        RecoveryPointFailed when state is not null => state with { Status = RecoveryPointStatus.Failed },
        JobLeaseExpired when state is not null => state with { LeaseExpiries = state.LeaseExpiries + 1 },
        JobRequeued when state is not null => state with { Status = RecoveryPointStatus.Requested },
        RecoveryPointExpired { Tier: StorageTier.Disk } when state is not null => state with { ExpiredOnDisk = true },
        RecoveryPointExpired { Tier: StorageTier.Vault } when state is not null => state with { ExpiredInVault = true },
        RecoveryPointDeleted when state is not null => state with { Deleted = true },
        _ => state,
    };

    public static BackupStarted Start(RecoveryPoint? rp, Guid recoveryPointId, Guid agentId, DateTimeOffset now)
    {
        var point = OwnedBy(rp, recoveryPointId, agentId);
        if (point.Status != RecoveryPointStatus.Requested)
            throw new ConflictException($"Backup {recoveryPointId} is {point.Status}, not waiting to start.");
        return new BackupStarted(point.Id, agentId, now);
    }

    /// <summary>Null when the pack is already recorded for this run (an agent retrying an upload is not a second disk write).</summary>
    public static PackWrittenToDisk? RecordPack(RecoveryPoint? rp, Guid recoveryPointId, Guid agentId, string packId, long bytes, int chunkCount, DateTimeOffset now)
    {
        var point = Running(rp, recoveryPointId, agentId);
        return point.PacksWritten.Contains(packId) ? null : new PackWrittenToDisk(point.Id, packId, bytes, chunkCount, packId, now);
    }

    public static RecoveryPointCreated Complete(
        RecoveryPoint? rp, Guid recoveryPointId, Guid agentId, int files, int directories, int skipped, long bytesRead,
        IReadOnlyList<string> packIds, long bytesStored, string manifestSha256, DateTimeOffset now)
    {
        var point = Running(rp, recoveryPointId, agentId);
        return new RecoveryPointCreated(point.Id, point.DataSourceId, files, directories, skipped, bytesRead, bytesStored, packIds, manifestSha256, now);
    }

    /// <summary>The events that commit a backup: the skipped items (when there are any), then the recovery point.</summary>
    public static object[] Commit(
        RecoveryPoint? rp, Guid recoveryPointId, Guid agentId, int files, int directories, IReadOnlyList<SkippedItemRecord> skipped, long bytesRead,
        IReadOnlyList<string> packIds, long bytesStored, string manifestSha256, DateTimeOffset now)
    {
        var created = Complete(rp, recoveryPointId, agentId, files, directories, skipped.Count, bytesRead, packIds, bytesStored, manifestSha256, now);
        return skipped.Count == 0
            ? [created]
            : [new BackupItemsSkipped(recoveryPointId, skipped.Take(MaxSkippedRecorded).ToList(), skipped.Count, now), created];
    }

    public static RecoveryPointFailed Fail(RecoveryPoint? rp, Guid recoveryPointId, Guid agentId, string reason, DateTimeOffset now)
    {
        var point = OwnedBy(rp, recoveryPointId, agentId);
        if (point.Status is RecoveryPointStatus.Created or RecoveryPointStatus.Failed)
            throw new ConflictException($"Backup {recoveryPointId} has already ended ({point.Status}).");
        return new RecoveryPointFailed(point.Id, reason, now);
    }

    /// <summary>Null when there is nothing to expire: the point never got created, or already expired on that tier.</summary>
    public static RecoveryPointExpired? Expire(RecoveryPoint? rp, StorageTier tier, string reason, DateTimeOffset now)
    {
        if (rp is not { Status: RecoveryPointStatus.Created, Deleted: false }) return null;
        var already = tier == StorageTier.Disk ? rp.ExpiredOnDisk : rp.ExpiredInVault;
        return already ? null : new RecoveryPointExpired(rp.Id, tier, reason, now);
    }

    /// <summary>
    /// Its data source was removed (retain data): a backup still waiting for its agent will not be taken. Null when it is no
    /// longer waiting (a running one may finish; its recovery point is retained like the others).
    /// </summary>
    public static RecoveryPointFailed? Cancel(RecoveryPoint? rp, string reason, DateTimeOffset now) =>
        rp is { Status: RecoveryPointStatus.Requested } ? new RecoveryPointFailed(rp.Id, reason, now) : null;

    /// <summary>
    /// Its data source was removed with its data: a backup that has not ended fails first (its agent's next heartbeat is
    /// refused and it stops), then the point is deleted. Nothing when it is deleted already.
    /// </summary>
    public static object[] Delete(RecoveryPoint? rp, string reason, DateTimeOffset now)
    {
        if (rp is null || rp.Deleted) return [];
        var deleted = new RecoveryPointDeleted(rp.Id, rp.DataSourceId, reason, now);
        return rp.Status is RecoveryPointStatus.Requested or RecoveryPointStatus.Running
            ? [new RecoveryPointFailed(rp.Id, reason, now), deleted]
            : [deleted];
    }

    /// <summary>A heartbeat: only the owning agent, only while the backup runs.</summary>
    public static void RenewLease(RecoveryPoint? rp, Guid recoveryPointId, Guid agentId) => Running(rp, recoveryPointId, agentId);

    /// <summary>The lease of the running backup ran out: re-queue it, or fail it after <see cref="JobLeaseOptions.MaxAttempts"/> expiries.</summary>
    public static object[] ExpireLease(RecoveryPoint? rp, Guid recoveryPointId, JobLeaseOptions options, DateTimeOffset now)
    {
        if (rp is null) throw new NotFoundException("Recovery point", recoveryPointId);
        if (rp.Status != RecoveryPointStatus.Running) throw new ConflictException($"Backup {recoveryPointId} is {rp.Status}, not running.");
        return JobLease.Expire(rp.Id, rp.AgentId, rp.LeaseExpiries + 1, options, now, reason => new RecoveryPointFailed(rp.Id, reason, now));
    }

    private static RecoveryPoint Running(RecoveryPoint? rp, Guid id, Guid agentId)
    {
        var point = OwnedBy(rp, id, agentId);
        if (point.Status != RecoveryPointStatus.Running)
            throw new ConflictException($"Backup {id} is {point.Status}, not running.");
        return point;
    }

    private static RecoveryPoint OwnedBy(RecoveryPoint? rp, Guid id, Guid agentId)
    {
        if (rp is null) throw new NotFoundException("Recovery point", id);
        if (rp.AgentId != agentId) throw new ForbiddenException($"Backup {id} belongs to another agent.");
        return rp;
    }
}
