using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Storage.Contracts;

namespace Backup.Commands.Synchronising;

/// <summary>
/// A synchronisation of one data source was asked for (a short-term policy's sync slot that is not a recovery-point time):
/// its agent brings the server's copy of the data source up to date (new chunks, packed, to the server's disk) without
/// creating a recovery point, so the next recovery point has little left to send.
/// </summary>
public sealed record SyncRequested(Guid SyncId, Guid DataSourceId, Guid GroupId, Guid AgentId, string SourcePath, string RequestedBy, DateTimeOffset RequestedAt)
    : IJobRequested
{
    Guid IJobEvent.JobId => SyncId;

    public QueuedJob Queue() => new()
    {
        Id = SyncId, AgentId = AgentId, Kind = JobKind.Synchronisation, DataSourceId = DataSourceId, Path = SourcePath, QueuedAt = RequestedAt,
    };

    public JobRequest Describe() => new(JobKind.Synchronisation, AgentId, DataSourceId, GroupId, Guid.Empty, StorageTier.Disk, RequestedBy, RequestedAt);
}

public sealed record SyncStarted(Guid SyncId, Guid AgentId, DateTimeOffset StartedAt) : IJobStarted
{
    Guid IJobEvent.JobId => SyncId;
}

/// <summary>One pack of a synchronisation landed on the backup server's local disk store (a "disk write").</summary>
public sealed record SyncPackWrittenToDisk(Guid SyncId, string PackId, long Bytes, int ChunkCount, DateTimeOffset WrittenAt) : IJobPackWritten
{
    Guid IJobPackWritten.JobId => SyncId;
}

/// <summary>
/// The server's copy of the data source is as the agent found it: every chunk the tree references is on the server's disk,
/// in <see cref="PackIds"/>. No recovery point: garbage collection keeps these packs until a recovery point taken after
/// this synchronisation exists.
/// </summary>
public sealed record ReplicaSynchronised(
    Guid SyncId, Guid DataSourceId, int Files, int Directories, int SkippedItems, long BytesRead, IReadOnlyList<string> PackIds, long BytesOnDisk,
    DateTimeOffset SynchronisedAt) : IJobEnded
{
    Guid IJobEvent.JobId => SyncId;

    public JobOutcome Outcome() => new(SynchronisedAt, Files: Files, BytesRead: BytesRead);
}

public sealed record SyncFailed(Guid SyncId, string Reason, DateTimeOffset FailedAt) : IJobEnded
{
    Guid IJobEvent.JobId => SyncId;

    public JobOutcome Outcome() => JobOutcome.Failed(Reason, FailedAt);
}

public enum SyncStatus
{
    Requested = 1,
    Running = 2,
    Synchronised = 3,
    Failed = 4,
}

/// <summary>The decider of one synchronisation job: the lease rules are every job's (<see cref="JobLifecycle"/>).</summary>
public sealed record Synchronisation(Guid Id, Guid DataSourceId, Guid AgentId, JobLease Lease, IReadOnlySet<string> PacksWritten, SyncStatus? Outcome = null)
    : IJob<Synchronisation>, IDataSourceJob, IPackingJob
{
    public static JobKind Kind => JobKind.Synchronisation;
    public static string Noun => "Synchronisation";
    public static string Resource => "Synchronisation";

    public SyncStatus Status => Outcome ?? (Lease.Phase == JobPhase.Running ? SyncStatus.Running : SyncStatus.Requested);
    public string StatusName => Status.ToString();

    public static Synchronisation? Next(Synchronisation? state, object @event) =>
        JobLifecycle.Fold(state, @event, Apply, (sync, lease) => sync with { Lease = lease });

    private static Synchronisation? Apply(Synchronisation? state, object @event) => @event switch
    {
        SyncRequested e => new Synchronisation(e.SyncId, e.DataSourceId, e.AgentId, JobLease.Requested, new HashSet<string>()),
        SyncPackWrittenToDisk e when state is not null => state with { PacksWritten = new HashSet<string>(state.PacksWritten) { e.PackId } },
        ReplicaSynchronised when state is not null => state with { Outcome = SyncStatus.Synchronised },
        SyncFailed when state is not null => state with { Outcome = SyncStatus.Failed },
        _ => state,
    };

    public static object Started(Synchronisation job, Guid agentId, DateTimeOffset now) => new SyncStarted(job.Id, agentId, now);

    public static object Failed(Synchronisation job, string reason, DateTimeOffset now) => new SyncFailed(job.Id, reason, now);

    /// <summary>"Synchronise now" of a data source, by an operator or the schedule: only while the source is protected.</summary>
    public static SyncRequested Request(DataSources.DataSource? source, Guid dataSourceId, Guid syncId, string requestedBy, DateTimeOffset at)
    {
        var s = DataSources.DataSource.Protected(source, dataSourceId);
        return new SyncRequested(syncId, s.Id, s.GroupId, s.AgentId, s.Path, requestedBy, at);
    }

    /// <summary>Null when the pack is already recorded for this run (an agent retrying an upload is not a second disk write).</summary>
    public object? RecordPack(string packId, long bytes, int chunkCount, DateTimeOffset now) =>
        PacksWritten.Contains(packId) ? null : new SyncPackWrittenToDisk(Id, packId, bytes, chunkCount, now);

    public static ReplicaSynchronised Complete(
        Synchronisation? sync, Guid syncId, Guid agentId, int files, int directories, int skipped, long bytesRead, IReadOnlyList<string> packIds,
        long bytesOnDisk, DateTimeOffset now)
    {
        var s = JobLifecycle.Running(sync, syncId, agentId);
        return new ReplicaSynchronised(s.Id, s.DataSourceId, files, directories, skipped, bytesRead, packIds, bytesOnDisk, now);
    }
}
