using System.Text.Json.Serialization;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
using Backup.Projections.Auditing;
using JasperFx.Events;
using Marten;
using Marten.Events.Archiving;
using Mediator;

namespace Backup.Projections.RecoveryPoints;

/// <summary>What happened to the recovery point's data at one step of its chain of custody.</summary>
public enum CustodyStepKind
{
    /// <summary>Requested by the short-term scheduler.</summary>
    Scheduled = 1,

    /// <summary>Requested by a person ("back up now").</summary>
    Requested = 2,

    /// <summary>Claimed by its agent.</summary>
    Started = 3,
    LeaseExpired = 4,
    Requeued = 5,
    PackWrittenToDisk = 6,
    ItemsSkipped = 7,
    Created = 8,
    Failed = 9,
    Checked = 10,
    VaultTransferStarted = 11,
    PackUploadedToVault = 12,
    VaultTransferFailed = 13,
    VaultTransferCompleted = 14,
    Expired = 15,

    /// <summary>Given back by its agent (stopping) and queued again at once.</summary>
    Released = 16,
}

/// <summary>
/// One step: when (<see cref="At"/>, the time the step records; <see cref="RecordedAt"/>, when the event was stored), who
/// (<see cref="Actor"/>), which event (<see cref="EventType"/> alias, global <see cref="Sequence"/>, stream and version) and
/// <see cref="AuditHash"/>, the audit chain's link for that event once the chain has reached it (null before). The other
/// fields are the step's facts and are left out when they do not apply.
/// </summary>
public sealed record CustodyStep(
    CustodyStepKind Step, DateTimeOffset At, DateTimeOffset RecordedAt, string? Actor, string EventType, long Sequence, Guid EventId, Guid StreamId, long Version,
    string? AuditHash)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Guid? AgentId { get; init; }

    /// <summary>A pack's id, which is its SHA-256.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? PackId { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? Bytes { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Chunks { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Packs { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Files { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Directories { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? SkippedItems { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? BytesRead { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? ManifestSha256 { get; init; }

    /// <summary>The copy a check read or an expiry removed from the policy: Disk or Vault.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public StorageTier? Tier { get; init; }

    /// <summary>A check's outcome: Sound, or Damaged with the packs in <see cref="Damaged"/>.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Outcome { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public IReadOnlyList<DamagedPack>? Damaged { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Attempt { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public DateTimeOffset? NotBefore { get; init; }

    /// <summary>Why: a failure, a lost lease, a vault error, the retention rule.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Reason { get; init; }
}

/// <summary>
/// The chain of custody of one recovery point: every step from its request to its expiry, in the order the event log
/// holds them (global sequence), from its own stream and its vault transfer's. <see cref="AuditChainedThrough"/> is the
/// last sequence the audit chain has linked: steps after it have no <see cref="CustodyStep.AuditHash"/> yet.
/// </summary>
public sealed record RecoveryPointCustody(
    Guid RecoveryPointId, Guid DataSourceId, Guid GroupId, Guid AgentId, string SourcePath, IReadOnlyList<CustodyStep> Steps, long? AuditChainedThrough);

public sealed record GetRecoveryPointCustody(Guid RecoveryPointId) : IQuery<RecoveryPointCustody?>;

/// <summary>Reads the events themselves (not a projection), so the answer is as current as the log and never waits on the daemon.</summary>
public sealed class GetRecoveryPointCustodyHandler(IQuerySession session) : IQueryHandler<GetRecoveryPointCustody, RecoveryPointCustody?>
{
    public async ValueTask<RecoveryPointCustody?> Handle(GetRecoveryPointCustody query, CancellationToken ct)
    {
        // Archived events too: custody is history, and archiving (of a stream, or of one event behind Marten's back) must not take a step out of it.
        var transferId = VaultTransfer.IdFor(query.RecoveryPointId);
        var events = await session.Events.QueryAllRawEvents()
            .Where(e => e.StreamId == query.RecoveryPointId || e.StreamId == transferId)
            .Where(e => e.MaybeArchived())
            .OrderBy(e => e.Sequence)
            .ToListAsync(ct);
        if (events.FirstOrDefault(e => e.StreamId == query.RecoveryPointId && e.Version == 1)?.Data is not BackupRequested requested) return null;

        var links = (await session.LoadManyAsync<AuditLink>(ct, events.Select(e => e.Sequence).ToArray())).ToDictionary(l => l.Id, l => l.Hash);
        var chainedThrough = await session.Query<AuditLink>().OrderByDescending(l => l.Id).Select(l => l.Id).Take(1).ToListAsync(ct);

        var steps = events.Select(e => Step(e, links.GetValueOrDefault(e.Sequence))).OfType<CustodyStep>().ToList();
        return new RecoveryPointCustody(
            requested.RecoveryPointId, requested.DataSourceId, requested.GroupId, requested.AgentId, requested.SourcePath, steps,
            chainedThrough.Count == 0 ? null : chainedThrough[0]);
    }

    private static CustodyStep? Step(IEvent e, string? hash)
    {
        CustodyStep Make(CustodyStepKind kind, DateTimeOffset at) => new(
            kind, at, e.Timestamp, e.GetHeader(CommandMetadata.ActorHeader)?.ToString(), e.EventTypeName, e.Sequence, e.Id, e.StreamId, e.Version, hash);

        return e.Data switch
        {
            BackupRequested r => Make(r.RequestedBy == "scheduler" ? CustodyStepKind.Scheduled : CustodyStepKind.Requested, r.RequestedAt) with { AgentId = r.AgentId },
            BackupStarted s => Make(CustodyStepKind.Started, s.StartedAt) with { AgentId = s.AgentId },
            JobLeaseExpired x => Make(CustodyStepKind.LeaseExpired, x.ExpiredAt) with { AgentId = x.AgentId, Attempt = x.Attempt, Reason = x.Reason },
            JobRequeued q => Make(CustodyStepKind.Requeued, q.RequeuedAt) with { AgentId = q.AgentId, Attempt = q.Attempt, NotBefore = q.NotBefore },
            JobReleased r => Make(CustodyStepKind.Released, r.ReleasedAt) with { AgentId = r.AgentId, Reason = r.Reason },
            PackWrittenToDisk p => Make(CustodyStepKind.PackWrittenToDisk, p.WrittenAt) with { PackId = p.PackId, Bytes = p.Bytes, Chunks = p.ChunkCount },
            BackupItemsSkipped s => Make(CustodyStepKind.ItemsSkipped, s.RecordedAt) with { SkippedItems = s.Total },
            RecoveryPointCreated c => Make(CustodyStepKind.Created, c.CreatedAt) with
            {
                Files = c.Files, Directories = c.Directories, SkippedItems = c.SkippedItems, BytesRead = c.BytesRead, Bytes = c.BytesStored,
                Packs = c.PackIds.Count, ManifestSha256 = c.ManifestSha256,
            },
            RecoveryPointFailed f => Make(CustodyStepKind.Failed, f.FailedAt) with { Reason = f.Reason },
            RecoveryPointChecked c => Make(CustodyStepKind.Checked, c.CheckedAt) with
            {
                Tier = c.Tier, Packs = c.PacksChecked, Bytes = c.BytesChecked, Outcome = c.Damaged.Count == 0 ? "Sound" : "Damaged",
                Damaged = c.Damaged,
            },
            VaultTransferStarted s => Make(CustodyStepKind.VaultTransferStarted, s.StartedAt) with { Packs = s.PackCount },
            PackUploadedToVault p => Make(CustodyStepKind.PackUploadedToVault, p.UploadedAt) with { PackId = p.PackId, Bytes = p.Bytes },
            VaultTransferFailed f => Make(CustodyStepKind.VaultTransferFailed, f.FailedAt) with { Reason = f.Reason },
            VaultTransferCompleted c => Make(CustodyStepKind.VaultTransferCompleted, c.CompletedAt) with { Packs = c.PackCount, Bytes = c.Bytes },
            RecoveryPointExpired x => Make(CustodyStepKind.Expired, x.ExpiredAt) with { Tier = x.Tier, Reason = x.Reason },
            _ => null,
        };
    }
}
