using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Marten;
using Mediator;

namespace Backup.Commands.Restores;

public sealed record RestoreAccess(Guid RestoreId, Guid RecoveryPointId, StorageTier Source, IReadOnlySet<string> PackIds);

/// <summary>What a running restore may read: only the packs of its own recovery point, only by its own agent.</summary>
public sealed record GetRestoreAccess(Guid AgentId, Guid RestoreId) : IQuery<RestoreAccess>;

public sealed class GetRestoreAccessHandler(IQuerySession session) : IQueryHandler<GetRestoreAccess, RestoreAccess>
{
    public async ValueTask<RestoreAccess> Handle(GetRestoreAccess q, CancellationToken ct)
    {
        var (restore, _) = await session.LoadAsync<Restore>(q.RestoreId, Restore.Next, ct);
        var running = JobLifecycle.Running(restore, q.RestoreId, q.AgentId);
        var (rp, _) = await session.LoadAsync<RecoveryPoint>(running.RecoveryPointId, RecoveryPoint.Next, ct);
        if (rp is null) throw new NotFoundException("Recovery point", running.RecoveryPointId);
        return new RestoreAccess(running.Id, rp.Id, running.Source, rp.PackIds.ToHashSet(StringComparer.Ordinal));
    }
}
