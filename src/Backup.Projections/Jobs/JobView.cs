using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
using Backup.Projections.RecoveryPoints;
using Backup.Storage.Contracts;
using FluentValidation;
using JasperFx.Events;
using JasperFx.Events.Grouping;
using Marten;
using Marten.Events.Projections;
using Mediator;

namespace Backup.Projections.Jobs;

public enum JobState
{
    /// <summary>Waiting for its agent (again, after a lost lease).</summary>
    Requested = 1,
    Running = 2,
    Succeeded = 3,

    /// <summary>See <see cref="JobView.FailureReason"/>; a consistency check fails when the copy it read is damaged.</summary>
    Failed = 4,
}

/// <summary>
/// One job in the history: a backup, synchronisation, vault copy or restore from request to end, or a consistency check
/// or expiry, which the catalog records as one event each. Every job but a synchronisation concerns one recovery point;
/// each carries its data source, group and agent.
/// </summary>
public sealed class JobView
{
    /// <summary>Backup: the recovery point's id; synchronisation: the sync's; vault copy: the transfer's; restore: the restore's; check and expiry: the event's.</summary>
    public Guid Id { get; set; }

    /// <summary>Global sequence of the event that opened the job: the order of the list and its cursor.</summary>
    public long Sequence { get; set; }
    public JobKind Kind { get; set; }
    public JobState State { get; set; }

    /// <summary>The recovery point the job concerns; empty for a synchronisation.</summary>
    public Guid RecoveryPointId { get; set; }
    public Guid DataSourceId { get; set; }
    public Guid GroupId { get; set; }
    public Guid AgentId { get; set; }

    /// <summary>The copy the job read or wrote: Disk for backups, Vault for vault copies, the source of a restore, the tier checked or expired.</summary>
    public StorageTier Tier { get; set; }

    /// <summary>Who asked: <c>user:&lt;key name&gt;</c>, <c>scheduler</c>, or the worker that did it on its own (<c>worker:vault-copy</c>, <c>worker:retention</c>).</summary>
    public string? RequestedBy { get; set; }
    public DateTimeOffset RequestedAt { get; set; }

    /// <summary>When its agent (or worker) took it; for a vault copy, its first attempt. Null for checks and expiries, which record only their end.</summary>
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }

    /// <summary>From start to end; null while running or when no start was recorded.</summary>
    public double? DurationSeconds { get; set; }

    /// <summary>
    /// Bytes the job moved: packs written to disk (backup), uploaded (vault copy), restored (restore) or read back (check).
    /// A backup's packs count as they land, so a running backup shows its progress.
    /// </summary>
    public long Bytes { get; set; }

    /// <summary>Bytes the agent read from the data source (backups only, once created).</summary>
    public long? BytesRead { get; set; }

    /// <summary>Packs written (backup), uploaded (vault copy) or checked (check).</summary>
    public int Packs { get; set; }
    public int? Files { get; set; }
    public string? FailureReason { get; set; }

    /// <summary>Why retention expired the copy (retention jobs).</summary>
    public string? Detail { get; set; }

    /// <summary>Lost leases (backup, restore) or attempts (vault copy) before this state.</summary>
    public int LeaseExpiries { get; set; }
    public int Attempts { get; set; }
}

/// <summary>The backup a job belongs to, looked up from the recovery point's <see cref="BackupRequested"/> (unknown: all empty).</summary>
public sealed record BackupOfJob(Guid DataSourceId, Guid GroupId, Guid AgentId)
{
    public static readonly BackupOfJob Unknown = new(Guid.Empty, Guid.Empty, Guid.Empty);
}

// Stand-ins the projection applies in place of events that do not name their recovery point's data source, group and
// agent; EnrichEventsAsync builds them. Never stored: the event log keeps the original events.
public sealed record RequestOfBackup(JobRequest Request, long Sequence);
public sealed record VaultCopyOfBackup(VaultTransferStarted Started, BackupOfJob Backup, string? Actor, long Sequence);
public sealed record CheckOfBackup(RecoveryPointChecked Checked, BackupOfJob Backup, long Sequence, Guid EventId);
public sealed record ExpiryOfBackup(RecoveryPointExpired Expired, BackupOfJob Backup, string? Actor, long Sequence, Guid EventId);

/// <summary>A vault transfer started again after a failure (a later start on its stream): the same job, its next attempt.</summary>
public sealed record VaultCopyRetried(VaultTransferStarted Started);

/// <summary>
/// Async. Agent work (backup, synchronisation, restore, and any later kind) is one document over its stream, followed through
/// the lifecycle its events mark (<see cref="IJobRequested"/>, <see cref="IJobStarted"/>, <see cref="IJobPackWritten"/>,
/// <see cref="IJobEnded"/>, the lease events), whatever the kind. A vault copy is one document over its stream too; a check or
/// expiry is one document per event (keyed by the event's id). A request that does not name its group, and copies, checks and
/// expiries, learn their data source, group and agent from the recovery point's first event, which is always in the log
/// before them (one indexed query per batch).
/// </summary>
public sealed class JobViewProjection : MultiStreamProjection<JobView, Guid>
{
    public JobViewProjection()
    {
        Identity<IJobEvent>(e => e.JobId);
        Identity<IJobPackWritten>(e => e.JobId);
        Identity<VaultTransferStarted>(e => e.TransferId);
        Identity<PackUploadedToVault>(e => e.TransferId);
        Identity<VaultTransferCompleted>(e => e.TransferId);
        Identity<VaultTransferFailed>(e => e.TransferId);
        CustomGrouping((_, events, grouping) =>
        {
            foreach (var e in events)
                if (e.Data is RecoveryPointChecked or RecoveryPointExpired) grouping.AddEvent(e.Id, e);
            return Task.CompletedTask;
        });
        // The daemon loads only the event types named here: the job lifecycle's, whatever the kind, and the workers' jobs.
        foreach (var type in typeof(IJobEvent).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false }
                     && (t.IsAssignableTo(typeof(IJobEvent)) || t.IsAssignableTo(typeof(IJobPackWritten)))))
            IncludeType(type);
        IncludeType<VaultTransferStarted>();
        IncludeType<PackUploadedToVault>();
        IncludeType<VaultTransferCompleted>();
        IncludeType<VaultTransferFailed>();
        IncludeType<RecoveryPointChecked>();
        IncludeType<RecoveryPointExpired>();
    }

    public override async Task EnrichEventsAsync(SliceGroup<JobView, Guid> group, IQuerySession querySession, CancellationToken cancellation)
    {
        var slices = group.Slices.ToList();
        var recoveryPoints = slices.SelectMany(s => s.Events()).Select(e => e.Data switch
        {
            IJobRequested r when r.Describe() is { GroupId: null } request => request.RecoveryPointId,
            VaultTransferStarted v => v.RecoveryPointId,
            RecoveryPointChecked c => c.RecoveryPointId,
            RecoveryPointExpired x => x.RecoveryPointId,
            _ => Guid.Empty,
        }).Where(id => id != Guid.Empty).Distinct().ToArray();
        if (recoveryPoints.Length == 0) return;

        // BackupRequested opens every recovery-point stream: version 1, found through the (stream, version) key.
        var firsts = await querySession.Events.QueryAllRawEvents()
            .Where(e => e.StreamId.IsOneOf(recoveryPoints) && e.Version == 1)
            .ToListAsync(cancellation);
        var backups = firsts.Select(e => e.Data).OfType<BackupRequested>()
            .ToDictionary(b => b.RecoveryPointId, b => new BackupOfJob(b.DataSourceId, b.GroupId, b.AgentId));
        BackupOfJob Lookup(Guid id) => backups.TryGetValue(id, out var b) ? b : BackupOfJob.Unknown;

        foreach (var slice in slices)
        {
            var events = slice.Events();
            for (var i = 0; i < events.Count; i++)
            {
                var e = events[i];
                switch (e.Data)
                {
                    case IJobRequested r when r.Describe() is { GroupId: null } request:
                        slice.ReplaceEvent(i, new RequestOfBackup(request with { GroupId = Lookup(request.RecoveryPointId).GroupId }, e.Sequence));
                        break;
                    case VaultTransferStarted v when e.Version == 1:
                        slice.ReplaceEvent(i, new VaultCopyOfBackup(v, Lookup(v.RecoveryPointId), Actor(e), e.Sequence));
                        break;
                    case VaultTransferStarted v:
                        slice.ReplaceEvent(i, new VaultCopyRetried(v));
                        break;
                    case RecoveryPointChecked c:
                        slice.ReplaceEvent(i, new CheckOfBackup(c, Lookup(c.RecoveryPointId), e.Sequence, e.Id));
                        break;
                    case RecoveryPointExpired x:
                        slice.ReplaceEvent(i, new ExpiryOfBackup(x, Lookup(x.RecoveryPointId), Actor(e), e.Sequence, e.Id));
                        break;
                }
            }
        }
    }

    private static string? Actor(IEvent e) => e.GetHeader(CommandMetadata.ActorHeader)?.ToString();

    public override JobView? Evolve(JobView? view, Guid id, IEvent e) => (e.Data, view) switch
    {
        (IJobRequested r, _) => Requested(id, r.Describe(), e.Sequence),
        (RequestOfBackup r, _) => Requested(id, r.Request, r.Sequence),
        (IJobStarted s, not null) => Started(view, s.StartedAt),
        (IJobPackWritten p, not null) => PackWritten(view, p.Bytes),
        (IJobEnded end, not null) => Ended(view, end.Outcome()),
        (JobLeaseExpired x, not null) => LeaseExpired(view, x.Attempt),
        (JobRequeued or JobReleased, not null) => Requeued(view),
        (VaultCopyOfBackup copy, _) => VaultCopy(id, copy),
        (VaultCopyRetried, not null) => VaultCopyRetry(view),
        (PackUploadedToVault p, not null) => PackWritten(view, p.Bytes),
        (VaultTransferCompleted c, not null) => Ended(view, new JobOutcome(c.CompletedAt, Bytes: c.Bytes), packs: c.PackCount),
        (VaultTransferFailed f, not null) => Ended(view, JobOutcome.Failed(f.Reason, f.FailedAt)),
        (CheckOfBackup check, _) => Check(check),
        (ExpiryOfBackup expiry, _) => Expiry(expiry),
        _ => view,
    };

    private static JobView Requested(Guid id, JobRequest r, long sequence) => new()
    {
        Id = id, Sequence = sequence, Kind = r.Kind, State = JobState.Requested, RecoveryPointId = r.RecoveryPointId,
        DataSourceId = r.DataSourceId, GroupId = r.GroupId ?? Guid.Empty, AgentId = r.AgentId, Tier = r.Tier,
        RequestedBy = r.RequestedBy, RequestedAt = r.RequestedAt,
    };

    private static JobView Started(JobView v, DateTimeOffset at)
    {
        v.State = JobState.Running;
        v.StartedAt = at;
        v.Attempts++;
        return v;
    }

    private static JobView PackWritten(JobView v, long bytes)
    {
        v.Packs++;
        v.Bytes += bytes;
        return v;
    }

    private static JobView Ended(JobView v, JobOutcome outcome, int? packs = null)
    {
        v.FailureReason = outcome.FailureReason;
        if (outcome.Files is { } files) v.Files = files;
        if (outcome.BytesRead is { } read) v.BytesRead = read;
        if (outcome.Bytes is { } bytes) v.Bytes = bytes;
        if (packs is { } count) v.Packs = count;
        v.State = outcome.FailureReason is null ? JobState.Succeeded : JobState.Failed;
        v.FinishedAt = outcome.At;
        v.DurationSeconds = v.StartedAt is { } started ? Math.Round((outcome.At - started).TotalSeconds, 3) : null;
        return v;
    }

    private static JobView LeaseExpired(JobView v, int attempt)
    {
        v.LeaseExpiries = attempt;
        return v;
    }

    private static JobView Requeued(JobView v)
    {
        v.State = JobState.Requested;
        v.StartedAt = null;
        return v;
    }

    private static JobView VaultCopy(Guid id, VaultCopyOfBackup copy)
    {
        var (e, backup, actor, sequence) = copy;
        return new JobView
        {
            Id = id, Sequence = sequence, Kind = JobKind.VaultCopy, State = JobState.Running, RecoveryPointId = e.RecoveryPointId,
            DataSourceId = backup.DataSourceId, GroupId = backup.GroupId, AgentId = backup.AgentId, Tier = StorageTier.Vault,
            RequestedBy = actor, RequestedAt = e.StartedAt, StartedAt = e.StartedAt, Attempts = 1,
        };
    }

    /// <summary>A retry of a failed copy runs again in the same job; it resumes at the first pack the vault lacks.</summary>
    private static JobView VaultCopyRetry(JobView v)
    {
        v.State = JobState.Running;
        v.FinishedAt = null;
        v.DurationSeconds = null;
        v.FailureReason = null;
        v.Attempts++;
        return v;
    }

    private static JobView Check(CheckOfBackup @checked)
    {
        var (e, backup, sequence, eventId) = @checked;
        return new JobView
        {
            Id = eventId, Sequence = sequence, Kind = JobKind.ConsistencyCheck, RecoveryPointId = e.RecoveryPointId,
            DataSourceId = backup.DataSourceId, GroupId = backup.GroupId, AgentId = backup.AgentId, Tier = e.Tier,
            RequestedBy = e.CheckedBy, RequestedAt = e.CheckedAt, FinishedAt = e.CheckedAt, Bytes = e.BytesChecked, Packs = e.PacksChecked,
            State = e.Damaged.Count == 0 ? JobState.Succeeded : JobState.Failed,
            FailureReason = e.Damaged.Count == 0 ? null
                : $"{e.Damaged.Count} of {e.PacksChecked} pack(s) missing or damaged: "
                  + string.Join("; ", e.Damaged.Take(10).Select(d => $"{d.PackId} {d.Problem}")) + (e.Damaged.Count > 10 ? "; …" : ""),
        };
    }

    private static JobView Expiry(ExpiryOfBackup expiry)
    {
        var (e, backup, actor, sequence, eventId) = expiry;
        return new JobView
        {
            Id = eventId, Sequence = sequence, Kind = JobKind.Retention, State = JobState.Succeeded, RecoveryPointId = e.RecoveryPointId,
            DataSourceId = backup.DataSourceId, GroupId = backup.GroupId, AgentId = backup.AgentId, Tier = e.Tier,
            RequestedBy = actor, RequestedAt = e.ExpiredAt, FinishedAt = e.ExpiredAt, Detail = e.Reason,
        };
    }
}

public sealed record GetJob(Guid JobId) : IQuery<JobView?>;

public sealed class GetJobHandler(IQuerySession session) : IQueryHandler<GetJob, JobView?>
{
    public async ValueTask<JobView?> Handle(GetJob query, CancellationToken ct) => await session.LoadAsync<JobView>(query.JobId, ct);
}

/// <summary>A page of jobs and the cursor for the next page (null on the last page).</summary>
public sealed record JobPage(IReadOnlyList<JobView> Items, string? NextAfter);

/// <summary>
/// Jobs, newest first, filtered by kind, state, data source, group, agent and request time (<see cref="From"/> inclusive,
/// <see cref="To"/> exclusive). <see cref="After"/> is the opaque cursor a previous page returned.
/// </summary>
public sealed record ListJobs(
    JobKind? Kind = null, JobState? State = null, Guid? DataSourceId = null, Guid? GroupId = null, Guid? AgentId = null,
    DateTimeOffset? From = null, DateTimeOffset? To = null, string? After = null, int Limit = 50) : IQuery<JobPage>;

public sealed class ListJobsValidator : AbstractValidator<ListJobs>
{
    public ListJobsValidator()
    {
        RuleFor(x => x.Limit).InclusiveBetween(1, 500);
        RuleFor(x => x.Kind).IsInEnum();
        RuleFor(x => x.State).IsInEnum();
        RuleFor(x => x.To).GreaterThan(x => x.From).When(x => x.From is not null && x.To is not null)
            .WithMessage("'to' must be later than 'from'.");
        RuleFor(x => x.After).Must(a => a is null || SequenceCursor.Jobs.TryDecode(a, out _))
            .WithMessage("'after' is not a cursor this API returned.");
    }
}

public sealed class ListJobsHandler(IQuerySession session) : IQueryHandler<ListJobs, JobPage>
{
    public async ValueTask<JobPage> Handle(ListJobs query, CancellationToken ct)
    {
        var q = session.Query<JobView>().AsQueryable();
        if (query.Kind is { } kind) q = q.Where(j => j.Kind == kind);
        if (query.State is { } state) q = q.Where(j => j.State == state);
        if (query.DataSourceId is { } ds) q = q.Where(j => j.DataSourceId == ds);
        if (query.GroupId is { } group) q = q.Where(j => j.GroupId == group);
        if (query.AgentId is { } agent) q = q.Where(j => j.AgentId == agent);
        if (query.From is { } from) q = q.Where(j => j.RequestedAt >= from);
        if (query.To is { } to) q = q.Where(j => j.RequestedAt < to);
        if (query.After is { } after && SequenceCursor.Jobs.TryDecode(after, out var sequence)) q = q.Where(j => j.Sequence < sequence);
        var items = await q.OrderByDescending(j => j.Sequence).Take(query.Limit + 1).ToListAsync(ct);
        return items.Count > query.Limit
            ? new JobPage(items.Take(query.Limit).ToList(), SequenceCursor.Jobs.Encode(items[query.Limit - 1].Sequence))
            : new JobPage(items, null);
    }
}
