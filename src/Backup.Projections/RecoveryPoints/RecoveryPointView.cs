using System.Text.Json.Serialization;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.Dispatching;
using Backup.Commands.GroupRuns;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.VaultTransfers;
using FluentValidation;
using JasperFx.Events;
using Marten;
using Marten.Events.Projections;
using Mediator;

namespace Backup.Projections.RecoveryPoints;

/// <summary>Where the copies of a recovery point are.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RecoveryPointTier>))]
public enum RecoveryPointTier
{
    None = 0,
    Disk = 1,
    Vault = 2,
    Both = 3,
}

public sealed class RecoveryPointView
{
    public Guid Id { get; set; }

    /// <summary>Global sequence of the request: the order of the list and its cursor.</summary>
    public long Sequence { get; set; }
    public Guid DataSourceId { get; set; }
    public Guid GroupId { get; set; }

    /// <summary>The group run this point was taken in (GET /api/group-runs/{id}); null for a point of its own.</summary>
    public Guid? GroupRunId { get; set; }
    public Guid AgentId { get; set; }
    public string SourcePath { get; set; } = "";
    public RecoveryPointStatus Status { get; set; }
    public string RequestedBy { get; set; } = "";
    public DateTimeOffset RequestedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? CreatedAt { get; set; }
    public int Files { get; set; }
    public int Directories { get; set; }
    public int SkippedItems { get; set; }
    public bool Partial => SkippedItems > 0;
    public long BytesRead { get; set; }
    public long BytesStored { get; set; }

    /// <summary>Bytes of the packs this run wrote to disk: what it added to the store (the rest was already there).</summary>
    public long BytesNew { get; set; }

    /// <summary>From the agent's start to the commit.</summary>
    public double? DurationSeconds { get; set; }

    /// <summary>What the agent could not back up, with the reasons (the first 1,000; <see cref="SkippedItems"/> counts all).</summary>
    public List<SkippedItemRecord> Skipped { get; set; } = [];
    public int PacksWrittenToDisk { get; set; }

    /// <summary>The last consistency check of each copy: null never checked, true sound, false damaged (the packs named below).</summary>
    public bool? VerifiedOnDisk { get; set; }
    public bool? VerifiedInVault { get; set; }
    public DateTimeOffset? LastCheckedAt { get; set; }
    public List<DamagedPack> DamagedOnDisk { get; set; } = [];
    public List<DamagedPack> DamagedInVault { get; set; } = [];
    public int PackCount { get; set; }
    public bool OnDisk { get; set; }
    public bool InVault { get; set; }
    public int PacksInVault { get; set; }
    public DateTimeOffset? CopiedToVaultAt { get; set; }
    public string? VaultError { get; set; }
    public string? FailureReason { get; set; }
    public DateTimeOffset? FailedAt { get; set; }
    public DateTimeOffset? ExpiredFromDiskAt { get; set; }
    public DateTimeOffset? ExpiredFromVaultAt { get; set; }

    /// <summary>Deleted with its data source: no copy is offered any more (tier None), whatever retention said.</summary>
    public bool Deleted { get; set; }
    public DateTimeOffset? DeletedAt { get; set; }
    public string? DeletionReason { get; set; }

    /// <summary>How often the agent lost its lease on this backup (each time the job went back to the queue).</summary>
    public int LeaseExpiries { get; set; }
    public string? LastLeaseExpiry { get; set; }
    public RecoveryPointTier Tier => (OnDisk, InVault) switch
    {
        (true, true) => RecoveryPointTier.Both,
        (true, false) => RecoveryPointTier.Disk,
        (false, true) => RecoveryPointTier.Vault,
        _ => RecoveryPointTier.None,
    };
}

public sealed partial class RecoveryPointViewProjection : MultiStreamProjection<RecoveryPointView, Guid>
{
    public RecoveryPointViewProjection()
    {
        Identity<BackupRequested>(e => e.RecoveryPointId);
        Identity<BackupStarted>(e => e.RecoveryPointId);
        Identity<PackWrittenToDisk>(e => e.RecoveryPointId);
        Identity<RecoveryPointCreated>(e => e.RecoveryPointId);
        Identity<BackupItemsSkipped>(e => e.RecoveryPointId);
        Identity<RecoveryPointChecked>(e => e.RecoveryPointId);
        Identity<RecoveryPointFailed>(e => e.RecoveryPointId);
        Identity<RecoveryPointExpired>(e => e.RecoveryPointId);
        Identity<RecoveryPointDeleted>(e => e.RecoveryPointId);
        Identity<VaultTransferStarted>(e => e.RecoveryPointId);
        Identity<PackUploadedToVault>(e => e.RecoveryPointId);
        Identity<VaultTransferCompleted>(e => e.RecoveryPointId);
        Identity<VaultTransferFailed>(e => e.RecoveryPointId);
        // Lease events name the job, which is a recovery point for backups and a restore for restores.
        Identity<JobLeaseExpired>(e => e.JobId);
        Identity<JobRequeued>(e => e.JobId);
        Identity<JobReleased>(e => e.JobId);
        Identity<BackupInGroupRun>(e => e.RecoveryPointId);
    }

    public static void Apply(BackupInGroupRun e, RecoveryPointView v) => v.GroupRunId = e.RunId;

    public static RecoveryPointView Create(IEvent<BackupRequested> @event) => Create(@event.Data, @event.Sequence);

    private static RecoveryPointView Create(BackupRequested e, long sequence) => new()
    {
        Id = e.RecoveryPointId, Sequence = sequence, DataSourceId = e.DataSourceId, GroupId = e.GroupId, AgentId = e.AgentId, SourcePath = e.SourcePath,
        Status = RecoveryPointStatus.Requested, RequestedBy = e.RequestedBy, RequestedAt = e.RequestedAt,
    };

    public static void Apply(BackupStarted e, RecoveryPointView v)
    {
        v.Status = RecoveryPointStatus.Running;
        v.StartedAt = e.StartedAt;
    }

    public static void Apply(PackWrittenToDisk e, RecoveryPointView v)
    {
        v.PacksWrittenToDisk++;
        v.BytesNew += e.Bytes;
    }

    public static void Apply(BackupItemsSkipped e, RecoveryPointView v) => v.Skipped = [.. e.Items];

    public static void Apply(RecoveryPointChecked e, RecoveryPointView v)
    {
        var sound = e.Damaged.Count == 0;
        if (e.Tier == StorageTier.Disk)
        {
            v.VerifiedOnDisk = sound;
            v.DamagedOnDisk = [.. e.Damaged];
        }
        else
        {
            v.VerifiedInVault = sound;
            v.DamagedInVault = [.. e.Damaged];
        }
        v.LastCheckedAt = e.CheckedAt;
    }

    public static void Apply(RecoveryPointCreated e, RecoveryPointView v)
    {
        v.Status = RecoveryPointStatus.Created;
        v.CreatedAt = e.CreatedAt;
        v.Files = e.Files;
        v.Directories = e.Directories;
        v.SkippedItems = e.SkippedItems;
        v.BytesRead = e.BytesRead;
        v.BytesStored = e.BytesStored;
        v.PackCount = e.PackIds.Count;
        v.OnDisk = true;
        if (v.StartedAt is { } started) v.DurationSeconds = Math.Round((e.CreatedAt - started).TotalSeconds, 3);
    }

    public static void Apply(RecoveryPointFailed e, RecoveryPointView v)
    {
        v.Status = RecoveryPointStatus.Failed;
        v.FailureReason = e.Reason;
        v.FailedAt = e.FailedAt;
    }

    /// <summary>Expired on a tier: the policy no longer keeps it there (it is not offered; garbage collection reclaims its packs).</summary>
    public static void Apply(RecoveryPointExpired e, RecoveryPointView v)
    {
        if (e.Tier == StorageTier.Disk)
        {
            v.OnDisk = false;
            v.ExpiredFromDiskAt = e.ExpiredAt;
        }
        else
        {
            v.InVault = false;
            v.ExpiredFromVaultAt = e.ExpiredAt;
        }
    }

    public static void Apply(RecoveryPointDeleted e, RecoveryPointView v)
    {
        v.Deleted = true;
        v.DeletedAt = e.DeletedAt;
        v.DeletionReason = e.Reason;
        v.OnDisk = false;
        v.InVault = false;
    }

    public static void Apply(JobLeaseExpired e, RecoveryPointView v)
    {
        v.LeaseExpiries = e.Attempt;
        v.LastLeaseExpiry = e.Reason;
    }

    public static void Apply(JobRequeued _, RecoveryPointView v)
    {
        v.Status = RecoveryPointStatus.Requested;
        v.StartedAt = null;
    }

    public static void Apply(JobReleased _, RecoveryPointView v)
    {
        v.Status = RecoveryPointStatus.Requested;
        v.StartedAt = null;
    }

    // A lease event of a restore job lands on a document that no BackupRequested ever created: drop it.
    public static bool ShouldDelete(JobLeaseExpired _, RecoveryPointView v) => v.DataSourceId == Guid.Empty;
    public static bool ShouldDelete(JobRequeued _, RecoveryPointView v) => v.DataSourceId == Guid.Empty;
    public static bool ShouldDelete(JobReleased _, RecoveryPointView v) => v.DataSourceId == Guid.Empty;

    public static void Apply(VaultTransferStarted _, RecoveryPointView v) => v.VaultError = null;
    public static void Apply(PackUploadedToVault _, RecoveryPointView v) => v.PacksInVault++;

    public static void Apply(VaultTransferCompleted e, RecoveryPointView v)
    {
        // A copy that was under way when the point was deleted does not bring it back.
        v.InVault = !v.Deleted;
        v.CopiedToVaultAt = e.CompletedAt;
    }

    public static void Apply(VaultTransferFailed e, RecoveryPointView v) => v.VaultError = e.Reason;
}

public sealed record GetRecoveryPoint(Guid RecoveryPointId) : IQuery<RecoveryPointView?>;

public sealed class GetRecoveryPointHandler(IQuerySession session) : IQueryHandler<GetRecoveryPoint, RecoveryPointView?>
{
    public async ValueTask<RecoveryPointView?> Handle(GetRecoveryPoint query, CancellationToken ct) =>
        await session.LoadAsync<RecoveryPointView>(query.RecoveryPointId, ct);
}

/// <summary>
/// Recovery points, newest first, filtered by data source, group, agent, tier and request time
/// (<see cref="From"/> inclusive, <see cref="To"/> exclusive). <see cref="After"/> is the opaque cursor a previous page returned.
/// </summary>
/// <para><see cref="AsOf"/>: the recovery points created by then, each with the tiers that held it then (copied to the vault by
/// then, not yet expired or deleted), and the tier filter applied to those; facts recorded later (a later vault copy, expiry,
/// deletion, check) are left out of each item.</para>
public sealed record ListRecoveryPoints(
    Guid? DataSourceId = null, Guid? GroupId = null, Guid? AgentId = null, RecoveryPointTier? Tier = null,
    DateTimeOffset? From = null, DateTimeOffset? To = null, string? After = null, int Limit = 50, DateTimeOffset? AsOf = null)
    : IQuery<Page<RecoveryPointView>>;

public sealed class ListRecoveryPointsValidator : AbstractValidator<ListRecoveryPoints>
{
    public ListRecoveryPointsValidator(TimeProvider clock)
    {
        RuleFor(x => x.AsOf).Must(asOf => asOf is not { } at || at <= clock.GetUtcNow())
            .WithMessage("'asOf' is in the future: recovery points are listed as they are now or were at a past instant.");
        RuleFor(x => x.Limit).InclusiveBetween(1, 500);
        RuleFor(x => x.Tier).IsInEnum();
        RuleFor(x => x.To).GreaterThan(x => x.From).When(x => x.From is not null && x.To is not null)
            .WithMessage("'to' must be later than 'from'.");
        RuleFor(x => x.After).Must(a => a is null || SequenceCursor.RecoveryPoints.TryDecode(a, out _))
            .WithMessage("'after' is not a cursor this API returned.");
    }
}

public sealed class ListRecoveryPointsHandler(IQuerySession session) : IQueryHandler<ListRecoveryPoints, Page<RecoveryPointView>>
{
    public async ValueTask<Page<RecoveryPointView>> Handle(ListRecoveryPoints query, CancellationToken ct)
    {
        var q = session.Query<RecoveryPointView>().AsQueryable();
        if (query.DataSourceId is { } ds) q = q.Where(r => r.DataSourceId == ds);
        if (query.GroupId is { } group) q = q.Where(r => r.GroupId == group);
        if (query.AgentId is { } agent) q = q.Where(r => r.AgentId == agent);
        if (query.AsOf is { } at)
        {
            q = q.Where(r => r.CreatedAt != null && r.CreatedAt <= at);
            // On a tier at T: there by then (created; copied), and neither expired from it nor deleted by then.
            System.Linq.Expressions.Expression<Func<RecoveryPointView, bool>> disk =
                r => (r.ExpiredFromDiskAt == null || r.ExpiredFromDiskAt > at) && (r.DeletedAt == null || r.DeletedAt > at);
            System.Linq.Expressions.Expression<Func<RecoveryPointView, bool>> vault =
                r => r.CopiedToVaultAt != null && r.CopiedToVaultAt <= at && (r.ExpiredFromVaultAt == null || r.ExpiredFromVaultAt > at) && (r.DeletedAt == null || r.DeletedAt > at);
            q = query.Tier switch
            {
                RecoveryPointTier.Disk => q.Where(disk).Where(Not(vault)),
                RecoveryPointTier.Vault => q.Where(Not(disk)).Where(vault),
                RecoveryPointTier.Both => q.Where(disk).Where(vault),
                RecoveryPointTier.None => q.Where(Not(disk)).Where(Not(vault)),
                _ => q,
            };
            return await PageAsync(q, query, ct, r => AsOf(r, at));
        }
        q = query.Tier switch
        {
            RecoveryPointTier.Disk => q.Where(r => r.OnDisk && !r.InVault),
            RecoveryPointTier.Vault => q.Where(r => !r.OnDisk && r.InVault),
            RecoveryPointTier.Both => q.Where(r => r.OnDisk && r.InVault),
            RecoveryPointTier.None => q.Where(r => !r.OnDisk && !r.InVault),
            _ => q,
        };
        return await PageAsync(q, query, ct, r => r);
    }

    private static async Task<Page<RecoveryPointView>> PageAsync(
        IQueryable<RecoveryPointView> q, ListRecoveryPoints query, CancellationToken ct, Func<RecoveryPointView, RecoveryPointView> shape)
    {
        if (query.From is { } from) q = q.Where(r => r.RequestedAt >= from);
        if (query.To is { } to) q = q.Where(r => r.RequestedAt < to);
        if (query.After is { } after && SequenceCursor.RecoveryPoints.TryDecode(after, out var sequence)) q = q.Where(r => r.Sequence < sequence);
        var items = (await q.OrderByDescending(r => r.Sequence).Take(query.Limit + 1).ToListAsync(ct)).Select(shape).ToList();
        return items.Count > query.Limit
            ? new Page<RecoveryPointView>(items.Take(query.Limit).ToList(), SequenceCursor.RecoveryPoints.Encode(items[query.Limit - 1].Sequence))
            : new Page<RecoveryPointView>(items, null);
    }

    private static System.Linq.Expressions.Expression<Func<RecoveryPointView, bool>> Not(System.Linq.Expressions.Expression<Func<RecoveryPointView, bool>> e) =>
        System.Linq.Expressions.Expression.Lambda<Func<RecoveryPointView, bool>>(System.Linq.Expressions.Expression.Not(e.Body), e.Parameters);

    /// <summary>The point as the catalog knew it at <paramref name="at"/>: its tiers then, and nothing recorded after.</summary>
    private static RecoveryPointView AsOf(RecoveryPointView r, DateTimeOffset at)
    {
        if (r.DeletedAt > at) { r.Deleted = false; r.DeletedAt = null; r.DeletionReason = null; }
        if (r.ExpiredFromDiskAt > at) r.ExpiredFromDiskAt = null;
        if (r.ExpiredFromVaultAt > at) r.ExpiredFromVaultAt = null;
        if (r.CopiedToVaultAt > at) { r.CopiedToVaultAt = null; r.PacksInVault = 0; }
        if (r.LastCheckedAt > at) { r.LastCheckedAt = null; r.VerifiedOnDisk = null; r.VerifiedInVault = null; r.DamagedOnDisk = []; r.DamagedInVault = []; }
        r.OnDisk = !r.Deleted && r.ExpiredFromDiskAt is null;
        r.InVault = !r.Deleted && r.CopiedToVaultAt is not null && r.ExpiredFromVaultAt is null;
        return r;
    }
}
