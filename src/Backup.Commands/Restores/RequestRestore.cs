using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
using Backup.Storage.Contracts;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Restores;

/// <summary>
/// Restore a whole recovery point to an alternate folder on its agent, from the disk copy or the vault copy. Items already at
/// the target are kept beside the restored ones unless <see cref="IfExists"/> says otherwise (overwriting is destructive: the API
/// asks a security PIN for it). A target that is a system folder (<see cref="AgentPath.IsSystemFolder"/>) is refused unless
/// <see cref="IntoSystemFolder"/> says the request means it.
/// </summary>
public sealed record RequestRestore(
    Guid RecoveryPointId, StorageTier? Source, string TargetPath, string RequestedBy,
    IReadOnlyList<string>? Paths = null, ExistingItems? IfExists = ExistingItems.KeepBoth, bool IntoSystemFolder = false) : ICommand<Guid>;

public sealed class RequestRestoreValidator : AbstractValidator<RequestRestore>
{
    public RequestRestoreValidator()
    {
        RuleFor(x => x.Source).NotNull().IsInEnum();
        RuleFor(x => x.TargetPath).NotEmpty().MaximumLength(4096)
            .Must(AddDataSourceValidator.IsAbsolute).WithMessage("'Target Path' must be an absolute path on the agent's machine.")
            .Must(t => !AgentPath.HasParentSegment(t)).WithMessage("'Target Path' must name the folder directly, without '..' segments: only the agent's machine knows where they lead.")
            .Must((c, t) => c.IntoSystemFolder || AgentPath.HasParentSegment(t) || !AgentPath.IsSystemFolder(AgentPath.Normal(t)))
            .WithMessage("'Target Path' is a system folder (the root, /etc, /usr, C:\\Windows… or a folder holding all users' or services' data): "
                + "restoring there can break the machine. Restore to another folder, or send intoSystemFolder: true if this is what you mean.");
        RuleFor(x => x.RequestedBy).NotEmpty();
        RuleFor(x => x.IfExists).NotNull().IsInEnum();
        RuleFor(x => x.Paths).Must(p => p is null || p.Count is > 0 and <= 10_000)
            .WithMessage("'Paths' must hold between 1 and 10000 items, or be left out to restore everything.");
        RuleForEach(x => x.Paths).NotEmpty().MaximumLength(4096).Must(IsRelativeItemPath)
            .WithMessage("Each path must be relative to the protected folder, '/'-separated, without '.' or '..' parts.")
            .Must(p => p is null || Storage.Format.ItemName.IsWellFormed(p))
            .WithMessage("Each path's escapes (U+FFFD and two upper-case hex digits, for a byte of a name that is not UTF-8) must stand for such bytes.");
    }

    /// <summary>'/'-separated and inside the point; a backslash is an ordinary byte of a Linux name (systemd's unit names escape with it).</summary>
    public static bool IsRelativeItemPath(string? path) =>
        path is not null && !path.StartsWith('/') && path.TrimEnd('/').Split('/').All(p => p is not ("" or "." or ".."));
}

public sealed class RequestRestoreHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RequestRestore, Guid>
{
    public async ValueTask<Guid> Handle(RequestRestore c, CancellationToken ct)
    {
        var (rp, _) = await session.LoadAsync<RecoveryPoint>(c.RecoveryPointId, RecoveryPoint.Next, ct);
        if (rp is null) throw new NotFoundException("Recovery point", c.RecoveryPointId);
        if (rp.Status != RecoveryPointStatus.Created)
            throw new ConflictException($"Recovery point {rp.Id} is {rp.Status}; only a created recovery point can be restored.");
        if (rp.Deleted)
            throw new ConflictException($"Recovery point {rp.Id} was deleted with its data source; it can no longer be restored.");
        // Packs outlive an expiry until garbage collection, but what the policy no longer keeps is not offered.
        if (c.Source == StorageTier.Disk && rp.ExpiredOnDisk)
            throw new ConflictException($"Recovery point {rp.Id} has expired on disk (short-term retention); restore it from the vault if it is kept there.");
        if (c.Source == StorageTier.Vault && rp.ExpiredInVault)
            throw new ConflictException($"Recovery point {rp.Id} has expired in the vault (online retention).");
        if (c.Source == StorageTier.Vault)
        {
            var (transfer, _) = await session.LoadAsync<VaultTransfer>(VaultTransfer.IdFor(rp.Id), VaultTransfer.Next, ct);
            if (transfer is not { Completed: true })
                throw new ConflictException($"Recovery point {rp.Id} has no complete copy in the vault yet.");
        }

        var restoreId = Guid.CreateVersion7();
        session.Events.StartStream<Restore>(restoreId,
            new RestoreRequested(restoreId, rp.Id, rp.DataSourceId, rp.AgentId, c.Source!.Value, AgentPath.Normal(c.TargetPath), c.RequestedBy, clock.GetUtcNow(),
                c.Paths?.Select(p => p.TrimEnd('/')).Distinct(StringComparer.Ordinal).ToList(), c.IfExists!.Value));
        await session.SaveChangesAsync(ct);
        return restoreId;
    }
}
