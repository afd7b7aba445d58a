using System.Collections.Frozen;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.Synchronising;
using Backup.Storage.Contracts;
using Marten;

namespace Backup.Commands.Dispatching;

/// <summary>
/// A job read from its stream, with its kind's rules bound: what claims, heartbeats, releases, failures, the lease reaper
/// and pack uploads decide on, whatever the kind. Decisions are appended at <see cref="Version"/>.
/// </summary>
public abstract class LoadedJob
{
    public abstract Guid Id { get; }
    public abstract JobKind Kind { get; }

    /// <summary>The stream's version when it was read; 0 when the job does not exist.</summary>
    public abstract long Version { get; }

    /// <summary>Null when the job does not exist.</summary>
    public abstract JobPhase? Phase { get; }

    /// <summary>The data source a backup or synchronisation reads; null for other kinds.</summary>
    public abstract Guid? DataSourceId { get; }

    public abstract object Start(Guid agentId, DateTimeOffset now);
    public abstract object Fail(Guid agentId, string reason, DateTimeOffset now);
    public abstract object? Cancel(string reason, DateTimeOffset now);
    public abstract void RenewLease(Guid agentId);
    public abstract JobReleased Release(Guid agentId, string reason, DateTimeOffset now);
    public abstract object[] ExpireLease(JobLeaseOptions options, DateTimeOffset now);

    /// <summary>The disk-write event of one pack the owning agent uploaded (null: recorded already); 409 for a kind that writes no packs.</summary>
    public abstract object? RecordPack(Guid agentId, string packId, long bytes, int chunkCount, DateTimeOffset now);
}

/// <summary>
/// The one registry of job kinds: a new kind of agent work is a job aggregate (<see cref="IJob{TSelf}"/>) and one line
/// here. Nothing else switches on the kind.
/// </summary>
public static class JobKinds
{
    private static readonly FrozenDictionary<JobKind, Func<IQuerySession, Guid, CancellationToken, Task<LoadedJob>>> Loaders =
        new Dictionary<JobKind, Func<IQuerySession, Guid, CancellationToken, Task<LoadedJob>>>
        {
            [RecoveryPoint.Kind] = Loader<RecoveryPoint>,
            [Synchronisation.Kind] = Loader<Synchronisation>,
            [Restore.Kind] = Loader<Restore>,
        }.ToFrozenDictionary();

    /// <summary>The kinds agents run (what a job queue may hold).</summary>
    public static IReadOnlyCollection<JobKind> AgentWork => Loaders.Keys;

    /// <summary>
    /// Reads job <paramref name="id"/> of <paramref name="kind"/> from its stream. A kind no agent runs reads as a job that does
    /// not exist (no phase, nothing to claim, expire or cancel), so one odd queue entry cannot stop an agent's polls or the reaper.
    /// </summary>
    public static Task<LoadedJob> LoadJobAsync(this IQuerySession session, JobKind kind, Guid id, CancellationToken ct) =>
        Loaders.TryGetValue(kind, out var load) ? load(session, id, ct) : Task.FromResult<LoadedJob>(new NotAgentWork(id, kind));

    private static async Task<LoadedJob> Loader<T>(IQuerySession session, Guid id, CancellationToken ct) where T : class, IJob<T>
    {
        var (state, version) = await session.LoadAsync<T>(id, T.Next, ct);
        return new Loaded<T>(id, state, version);
    }

    private sealed class NotAgentWork(Guid id, JobKind kind) : LoadedJob
    {
        public override Guid Id => id;
        public override JobKind Kind => kind;
        public override long Version => 0;
        public override JobPhase? Phase => null;
        public override Guid? DataSourceId => null;

        public override object Start(Guid agentId, DateTimeOffset now) => throw Refused();
        public override object Fail(Guid agentId, string reason, DateTimeOffset now) => throw Refused();
        public override object? Cancel(string reason, DateTimeOffset now) => null;
        public override void RenewLease(Guid agentId) => throw Refused();
        public override JobReleased Release(Guid agentId, string reason, DateTimeOffset now) => throw Refused();
        public override object[] ExpireLease(JobLeaseOptions options, DateTimeOffset now) => throw Refused();
        public override object? RecordPack(Guid agentId, string packId, long bytes, int chunkCount, DateTimeOffset now) => throw Refused();

        private ConflictException Refused() => new($"Job {id} is a {kind} job, which no agent runs.");
    }

    private sealed class Loaded<T>(Guid id, T? state, long version) : LoadedJob where T : class, IJob<T>
    {
        public override Guid Id => id;
        public override JobKind Kind => T.Kind;
        public override long Version => version;
        public override JobPhase? Phase => state?.Lease.Phase;
        public override Guid? DataSourceId => (state as IDataSourceJob)?.DataSourceId;

        public override object Start(Guid agentId, DateTimeOffset now) => JobLifecycle.Start(state, id, agentId, now);
        public override object Fail(Guid agentId, string reason, DateTimeOffset now) => JobLifecycle.Fail(state, id, agentId, reason, now);
        public override object? Cancel(string reason, DateTimeOffset now) => JobLifecycle.Cancel(state, reason, now);
        public override void RenewLease(Guid agentId) => JobLifecycle.Running(state, id, agentId);
        public override JobReleased Release(Guid agentId, string reason, DateTimeOffset now) => JobLifecycle.Release(state, id, agentId, reason, now);
        public override object[] ExpireLease(JobLeaseOptions options, DateTimeOffset now) => JobLifecycle.ExpireLease(state, id, options, now);

        public override object? RecordPack(Guid agentId, string packId, long bytes, int chunkCount, DateTimeOffset now) =>
            JobLifecycle.Running(state, id, agentId) is IPackingJob packing
                ? packing.RecordPack(packId, bytes, chunkCount, now)
                : throw new ConflictException($"{T.Noun} {id} writes no packs.");
    }
}
