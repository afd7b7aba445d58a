using System.Text.Json.Serialization;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
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
    public Guid DataSourceId { get; set; }
    public Guid GroupId { get; set; }
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
    public int PacksWrittenToDisk { get; set; }
    public int PackCount { get; set; }
    public bool OnDisk { get; set; }
    public bool InVault { get; set; }
    public int PacksInVault { get; set; }
    public DateTimeOffset? CopiedToVaultAt { get; set; }
    public string? VaultError { get; set; }
    public string? FailureReason { get; set; }
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
        Identity<RecoveryPointFailed>(e => e.RecoveryPointId);
        Identity<VaultTransferStarted>(e => e.RecoveryPointId);
        Identity<PackUploadedToVault>(e => e.RecoveryPointId);
        Identity<VaultTransferCompleted>(e => e.RecoveryPointId);
        Identity<VaultTransferFailed>(e => e.RecoveryPointId);
    }

    public static RecoveryPointView Create(BackupRequested e) => new()
    {
        Id = e.RecoveryPointId, DataSourceId = e.DataSourceId, GroupId = e.GroupId, AgentId = e.AgentId, SourcePath = e.SourcePath,
        Status = RecoveryPointStatus.Requested, RequestedBy = e.RequestedBy, RequestedAt = e.RequestedAt,
    };

    public static void Apply(BackupStarted e, RecoveryPointView v)
    {
        v.Status = RecoveryPointStatus.Running;
        v.StartedAt = e.StartedAt;
    }

    public static void Apply(PackWrittenToDisk _, RecoveryPointView v) => v.PacksWrittenToDisk++;

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
    }

    public static void Apply(RecoveryPointFailed e, RecoveryPointView v)
    {
        v.Status = RecoveryPointStatus.Failed;
        v.FailureReason = e.Reason;
    }

    public static void Apply(VaultTransferStarted _, RecoveryPointView v) => v.VaultError = null;
    public static void Apply(PackUploadedToVault _, RecoveryPointView v) => v.PacksInVault++;

    public static void Apply(VaultTransferCompleted e, RecoveryPointView v)
    {
        v.InVault = true;
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

/// <summary>Newest first.</summary>
public sealed record ListRecoveryPoints(Guid? DataSourceId, int Limit) : IQuery<IReadOnlyList<RecoveryPointView>>;

public sealed class ListRecoveryPointsHandler(IQuerySession session) : IQueryHandler<ListRecoveryPoints, IReadOnlyList<RecoveryPointView>>
{
    public async ValueTask<IReadOnlyList<RecoveryPointView>> Handle(ListRecoveryPoints query, CancellationToken ct)
    {
        var q = session.Query<RecoveryPointView>().AsQueryable();
        if (query.DataSourceId is { } ds) q = q.Where(r => r.DataSourceId == ds);
        return await q.OrderByDescending(r => r.RequestedAt).Take(query.Limit).ToListAsync(ct);
    }
}
