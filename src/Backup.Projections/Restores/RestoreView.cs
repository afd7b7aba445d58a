using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Storage.Contracts;
using Marten;
using Marten.Events.Aggregation;
using Mediator;

namespace Backup.Projections.Restores;

public sealed class RestoreView
{
    public Guid Id { get; set; }
    public Guid RecoveryPointId { get; set; }
    public Guid DataSourceId { get; set; }
    public Guid AgentId { get; set; }
    public StorageTier Source { get; set; }
    public string TargetPath { get; set; } = "";
    public RestoreStatus Status { get; set; }
    public string RequestedBy { get; set; } = "";
    public DateTimeOffset RequestedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public List<string>? Paths { get; set; }
    public ExistingItems IfExists { get; set; }
    public int Files { get; set; }
    public int SkippedExisting { get; set; }
    public long Bytes { get; set; }
    public string? FailureReason { get; set; }
    public int LeaseExpiries { get; set; }

    /// <summary>Items the agent could not write (at most <see cref="RestoreItemsFailed.MaxRecorded"/>); <see cref="FailedItemCount"/> counts all.</summary>
    public List<RestoreItemFailure>? FailedItems { get; set; }
    public int FailedItemCount { get; set; }
}

public sealed partial class RestoreViewProjection : SingleStreamProjection<RestoreView, Guid>
{
    public static RestoreView Create(RestoreRequested e) => new()
    {
        Id = e.RestoreId, RecoveryPointId = e.RecoveryPointId, DataSourceId = e.DataSourceId, AgentId = e.AgentId, Source = e.Source,
        TargetPath = e.TargetPath, Status = RestoreStatus.Requested, RequestedBy = e.RequestedBy, RequestedAt = e.RequestedAt,
        Paths = e.Paths?.ToList(), IfExists = e.IfExists,
    };

    public static void Apply(RestoreStarted e, RestoreView v)
    {
        v.Status = RestoreStatus.Running;
        v.StartedAt = e.StartedAt;
    }

    public static void Apply(JobLeaseExpired e, RestoreView v) => v.LeaseExpiries = e.Attempt;

    public static void Apply(JobRequeued _, RestoreView v)
    {
        v.Status = RestoreStatus.Requested;
        v.StartedAt = null;
    }

    public static void Apply(JobReleased _, RestoreView v)
    {
        v.Status = RestoreStatus.Requested;
        v.StartedAt = null;
    }

    public static void Apply(RestoreItemsFailed e, RestoreView v)
    {
        v.FailedItems = [.. e.Items];
        v.FailedItemCount = e.Total;
    }

    public static void Apply(RestoreCompleted e, RestoreView v)
    {
        v.Status = v.FailedItemCount > 0 ? RestoreStatus.CompletedWithErrors : RestoreStatus.Completed;
        v.FinishedAt = e.CompletedAt;
        v.Files = e.Files;
        v.Bytes = e.Bytes;
        v.SkippedExisting = e.SkippedExisting;
    }

    public static void Apply(RestoreFailed e, RestoreView v)
    {
        v.Status = RestoreStatus.Failed;
        v.FinishedAt = e.FailedAt;
        v.FailureReason = e.Reason;
    }
}

public sealed record GetRestore(Guid RestoreId) : IQuery<RestoreView?>;

public sealed class GetRestoreHandler(IQuerySession session) : IQueryHandler<GetRestore, RestoreView?>
{
    public async ValueTask<RestoreView?> Handle(GetRestore query, CancellationToken ct) => await session.LoadAsync<RestoreView>(query.RestoreId, ct);
}
