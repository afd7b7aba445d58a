using Backup.Commands.Dispatching;
using Backup.Storage.Contracts;

namespace Backup.Commands.RecoveryPoints;

public sealed record BackupRequested(Guid RecoveryPointId, Guid DataSourceId, Guid GroupId, Guid AgentId, string SourcePath, string RequestedBy, DateTimeOffset RequestedAt)
    : IJobRequested
{
    Guid IJobEvent.JobId => RecoveryPointId;

    public QueuedJob Queue() => new()
    {
        Id = RecoveryPointId, AgentId = AgentId, Kind = JobKind.Backup, RecoveryPointId = RecoveryPointId, DataSourceId = DataSourceId,
        Path = SourcePath, QueuedAt = RequestedAt,
    };

    public JobRequest Describe() => new(JobKind.Backup, AgentId, DataSourceId, GroupId, RecoveryPointId, StorageTier.Disk, RequestedBy, RequestedAt);
}

public sealed record BackupStarted(Guid RecoveryPointId, Guid AgentId, DateTimeOffset StartedAt) : IJobStarted
{
    Guid IJobEvent.JobId => RecoveryPointId;
}

/// <summary>One pack of backup data landed on the backup server's local disk store (a "disk write").</summary>
public sealed record PackWrittenToDisk(Guid RecoveryPointId, string PackId, long Bytes, int ChunkCount, string Sha256, DateTimeOffset WrittenAt) : IJobPackWritten
{
    Guid IJobPackWritten.JobId => RecoveryPointId;
}

public sealed record RecoveryPointCreated(
    Guid RecoveryPointId, Guid DataSourceId, int Files, int Directories, int SkippedItems, long BytesRead, long BytesStored,
    IReadOnlyList<string> PackIds, string ManifestSha256, DateTimeOffset CreatedAt) : IJobEnded
{
    Guid IJobEvent.JobId => RecoveryPointId;

    public JobOutcome Outcome() => new(CreatedAt, Files: Files, BytesRead: BytesRead);
}

/// <summary>An item the agent could not back up, and why.</summary>
public sealed record SkippedItemRecord(string Path, string Reason);

/// <summary>
/// The items a backup could not include, with the reasons (at most <see cref="RecoveryPoint.MaxSkippedRecorded"/>;
/// <see cref="Total"/> counts all); appended just before <see cref="RecoveryPointCreated"/>, which is then partial.
/// </summary>
public sealed record BackupItemsSkipped(Guid RecoveryPointId, IReadOnlyList<SkippedItemRecord> Items, int Total, DateTimeOffset RecordedAt);

public sealed record RecoveryPointFailed(Guid RecoveryPointId, string Reason, DateTimeOffset FailedAt) : IJobEnded
{
    Guid IJobEvent.JobId => RecoveryPointId;

    public JobOutcome Outcome() => JobOutcome.Failed(Reason, FailedAt);
}

/// <summary>
/// Where a copy of a recovery point is kept: the one tier vocabulary of expiries, checks, repairs, restores and deletions.
/// Written by name; events written before it carried a name were written by number, which it still reads.
/// </summary>
[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<StorageTier>))]
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

/// <summary>
/// The decider of one backup run: a job (claimed, leased and ended by <see cref="JobLifecycle"/>'s rules) whose packs land on
/// the server's disk and whose commit creates the recovery point, which retention later expires tier by tier.
/// </summary>
public sealed record RecoveryPoint(
    Guid Id, Guid DataSourceId, Guid AgentId, JobLease Lease,
    IReadOnlySet<string> PacksWritten, IReadOnlyList<string> PackIds, RecoveryPointStatus? Outcome = null,
    bool ExpiredOnDisk = false, bool ExpiredInVault = false, bool Deleted = false, string SourcePath = "")
    : IJob<RecoveryPoint>, IDataSourceJob, IPackingJob
{
    public const int MaxSkippedRecorded = 1_000;

    public static JobKind Kind => JobKind.Backup;
    public static string Noun => "Backup";
    public static string Resource => "Recovery point";

    public RecoveryPointStatus Status => Outcome ?? (Lease.Phase == JobPhase.Running ? RecoveryPointStatus.Running : RecoveryPointStatus.Requested);
    public string StatusName => Status.ToString();

    public static RecoveryPoint? Next(RecoveryPoint? state, object @event) =>
        JobLifecycle.Fold(state, @event, Apply, (rp, lease) => rp with { Lease = lease });

    private static RecoveryPoint? Apply(RecoveryPoint? state, object @event) => @event switch
    {
        BackupRequested e => new RecoveryPoint(e.RecoveryPointId, e.DataSourceId, e.AgentId, JobLease.Requested, new HashSet<string>(), [], SourcePath: e.SourcePath),
        PackWrittenToDisk e when state is not null => state with { PacksWritten = new HashSet<string>(state.PacksWritten) { e.PackId } },
        RecoveryPointCreated e when state is not null => state with { Outcome = RecoveryPointStatus.Created, PackIds = e.PackIds },
        RecoveryPointFailed when state is not null => state with { Outcome = RecoveryPointStatus.Failed },
        RecoveryPointExpired { Tier: StorageTier.Disk } when state is not null => state with { ExpiredOnDisk = true },
        RecoveryPointExpired { Tier: StorageTier.Vault } when state is not null => state with { ExpiredInVault = true },
        RecoveryPointDeleted when state is not null => state with { Deleted = true },
        _ => state,
    };

    public static object Started(RecoveryPoint job, Guid agentId, DateTimeOffset now) => new BackupStarted(job.Id, agentId, now);

    public static object Failed(RecoveryPoint job, string reason, DateTimeOffset now) => new RecoveryPointFailed(job.Id, reason, now);

    /// <summary>
    /// "Create a recovery point now" of a data source, by whoever asks (an operator, the schedule, a consistency repair):
    /// only while the source is protected.
    /// </summary>
    public static BackupRequested Request(DataSources.DataSource? source, Guid dataSourceId, Guid recoveryPointId, string requestedBy, DateTimeOffset at)
    {
        var s = DataSources.DataSource.Protected(source, dataSourceId);
        return new BackupRequested(recoveryPointId, s.Id, s.GroupId, s.AgentId, s.Path, requestedBy, at);
    }

    /// <summary>Null when the pack is already recorded for this run (an agent retrying an upload is not a second disk write).</summary>
    public object? RecordPack(string packId, long bytes, int chunkCount, DateTimeOffset now) =>
        PacksWritten.Contains(packId) ? null : new PackWrittenToDisk(Id, packId, bytes, chunkCount, packId, now);

    public static RecoveryPointCreated Complete(
        RecoveryPoint? rp, Guid recoveryPointId, Guid agentId, int files, int directories, int skipped, long bytesRead,
        IReadOnlyList<string> packIds, long bytesStored, string manifestSha256, DateTimeOffset now)
    {
        var point = JobLifecycle.Running(rp, recoveryPointId, agentId);
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

    /// <summary>Null when there is nothing to expire: the point never got created, or already expired on that tier.</summary>
    public static RecoveryPointExpired? Expire(RecoveryPoint? rp, StorageTier tier, string reason, DateTimeOffset now)
    {
        if (rp is not { Status: RecoveryPointStatus.Created, Deleted: false }) return null;
        var already = tier == StorageTier.Disk ? rp.ExpiredOnDisk : rp.ExpiredInVault;
        return already ? null : new RecoveryPointExpired(rp.Id, tier, reason, now);
    }

    /// <summary>
    /// Its data source was removed with its data: a backup that has not ended fails first (its agent's next heartbeat is
    /// refused and it stops), then the point is deleted. Nothing when it is deleted already.
    /// </summary>
    public static object[] Delete(RecoveryPoint? rp, string reason, DateTimeOffset now)
    {
        if (rp is null || rp.Deleted) return [];
        var deleted = new RecoveryPointDeleted(rp.Id, rp.DataSourceId, reason, now);
        return rp.Lease.Phase != JobPhase.Ended
            ? [new RecoveryPointFailed(rp.Id, reason, now), deleted]
            : [deleted];
    }
}
