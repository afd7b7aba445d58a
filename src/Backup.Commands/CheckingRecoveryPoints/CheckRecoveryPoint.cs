using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.Stores;
using Marten;
using Mediator;

namespace Backup.Commands.CheckingRecoveryPoints;

/// <summary>One pack of a recovery point that is missing or damaged on a tier, and how.</summary>
public sealed record DamagedPack(string PackId, string Problem);

/// <summary>
/// A consistency check of one copy of a recovery point: every pack it needs was read back and checked against its
/// id (SHA-256) and its trailer against the server's chunk index. <see cref="Damaged"/> empty means the copy is sound.
/// Keyless: it proves every stored byte is the byte written, not that it decrypts (the agent's restore does that).
/// </summary>
public sealed record RecoveryPointChecked(
    Guid RecoveryPointId, StorageTier Tier, int PacksChecked, long BytesChecked, IReadOnlyList<DamagedPack> Damaged, string CheckedBy, DateTimeOffset CheckedAt);

public sealed record CheckOutcome(int PacksChecked, long BytesChecked, IReadOnlyList<DamagedPack> Damaged);

/// <summary>Checks the <paramref name="Tier"/> copy of a created recovery point, pack by pack (<see cref="ICopyChecker"/>), and records the outcome.</summary>
public sealed record CheckRecoveryPoint(Guid RecoveryPointId, StorageTier Tier, string RequestedBy) : ICommand<RecoveryPointChecked>;

public sealed class CheckRecoveryPointHandler(IDocumentSession session, TimeProvider clock, ICopyChecker checker) : ICommandHandler<CheckRecoveryPoint, RecoveryPointChecked>
{
    public async ValueTask<RecoveryPointChecked> Handle(CheckRecoveryPoint command, CancellationToken ct)
    {
        var (rp, _) = await session.LoadAsync<RecoveryPoint>(command.RecoveryPointId, RecoveryPoint.Next, ct);
        if (rp is null) throw new NotFoundException("Recovery point", command.RecoveryPointId);
        if (rp.Status != RecoveryPointStatus.Created)
            throw new ConflictException($"Recovery point {command.RecoveryPointId} is {rp.Status}: only a created recovery point can be checked.");
        // Its packs are no longer live: the garbage collector may take them at any moment, so a check would report noise.
        if (rp.Deleted)
            throw new ConflictException($"Recovery point {command.RecoveryPointId} was deleted with its data source: there is no copy to check.");
        if (command.Tier == StorageTier.Vault)
        {
            var (transfer, _) = await session.LoadAsync<VaultTransfers.VaultTransfer>(VaultTransfers.VaultTransfer.IdFor(rp.Id), VaultTransfers.VaultTransfer.Next, ct);
            if (transfer?.Completed != true)
                throw new ConflictException($"Recovery point {command.RecoveryPointId} has no completed copy in the vault to check.");
        }
        var outcome = await checker.CheckAsync(session, command.Tier, rp.PackIds, ct);
        var checkedEvent = new RecoveryPointChecked(rp.Id, command.Tier, outcome.PacksChecked, outcome.BytesChecked, outcome.Damaged, command.RequestedBy, clock.GetUtcNow());
        session.Events.Append(rp.Id, checkedEvent);
        await session.SaveChangesAsync(ct);
        return checkedEvent;
    }
}
