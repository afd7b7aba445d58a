using Backup.Commands.Common;

namespace Backup.Commands.VaultTransfers;

public sealed record VaultTransferStarted(Guid TransferId, Guid RecoveryPointId, int PackCount, DateTimeOffset StartedAt);

public sealed record PackUploadedToVault(Guid TransferId, Guid RecoveryPointId, string PackId, long Bytes, DateTimeOffset UploadedAt);

public sealed record VaultTransferCompleted(Guid TransferId, Guid RecoveryPointId, int PackCount, long Bytes, DateTimeOffset CompletedAt);

public sealed record VaultTransferFailed(Guid TransferId, Guid RecoveryPointId, string Reason, DateTimeOffset FailedAt);

/// <summary>
/// The online copy of one recovery point. Its stream id is derived from the recovery point, so two workers
/// that both decide to copy the same point collide on the stream instead of copying twice.
/// </summary>
public sealed record VaultTransfer(Guid Id, Guid RecoveryPointId, IReadOnlySet<string> UploadedPacks, bool Completed, int Attempts)
{
    public static Guid IdFor(Guid recoveryPointId) => DeterministicGuid.Create($"vault-transfer:{recoveryPointId:N}");

    public static VaultTransfer? Next(VaultTransfer? state, object @event) => @event switch
    {
        VaultTransferStarted e => (state ?? new VaultTransfer(e.TransferId, e.RecoveryPointId, new HashSet<string>(), false, 0))
            with { Attempts = (state?.Attempts ?? 0) + 1 },
        PackUploadedToVault e when state is not null => state with { UploadedPacks = new HashSet<string>(state.UploadedPacks) { e.PackId } },
        VaultTransferCompleted when state is not null => state with { Completed = true },
        _ => state,
    };

    /// <summary>Null when there is nothing to do: the copy is already complete.</summary>
    public static VaultTransferStarted? Start(VaultTransfer? transfer, Guid recoveryPointId, int packCount, DateTimeOffset now) =>
        transfer is { Completed: true } ? null : new VaultTransferStarted(IdFor(recoveryPointId), recoveryPointId, packCount, now);

    public static PackUploadedToVault? RecordUpload(VaultTransfer transfer, string packId, long bytes, DateTimeOffset now) =>
        transfer.UploadedPacks.Contains(packId) ? null : new PackUploadedToVault(transfer.Id, transfer.RecoveryPointId, packId, bytes, now);

    /// <summary>The copy could not go on (the vault refused, a pack was unreadable): a later attempt resumes it.</summary>
    public static VaultTransferFailed Fail(VaultTransfer transfer, string reason, DateTimeOffset now) =>
        new(transfer.Id, transfer.RecoveryPointId, reason, now);

    public static VaultTransferCompleted Complete(VaultTransfer transfer, IReadOnlyList<string> packIds, long bytes, DateTimeOffset now)
    {
        var missing = packIds.Where(p => !transfer.UploadedPacks.Contains(p)).ToList();
        if (missing.Count > 0)
            throw new ConflictException($"{missing.Count} pack(s) of recovery point {transfer.RecoveryPointId} are not in the vault yet.");
        return new VaultTransferCompleted(transfer.Id, transfer.RecoveryPointId, packIds.Count, bytes, now);
    }
}
