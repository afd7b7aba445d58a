using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.TakingRecoveryPoints;

/// <summary>
/// An agent commits the manifest of a finished backup. The caller has checked the manifest and that every
/// pack it names is on disk; <see cref="PersistManifest"/> stores it, only after the backup is known to be this agent's and running.
/// </summary>
public sealed record CompleteBackup(
    Guid AgentId, Guid RecoveryPointId, int Files, int Directories, int SkippedItems, long BytesRead, long BytesStored,
    IReadOnlyList<string> PackIds, string ManifestSha256, Func<CancellationToken, Task> PersistManifest) : ICommand;

public sealed class CompleteBackupValidator : AbstractValidator<CompleteBackup>
{
    public CompleteBackupValidator()
    {
        RuleFor(x => x.Files).GreaterThanOrEqualTo(0);
        RuleFor(x => x.Directories).GreaterThanOrEqualTo(0);
        RuleFor(x => x.BytesRead).GreaterThanOrEqualTo(0);
        RuleForEach(x => x.PackIds).Matches("^[0-9a-f]{64}$");
    }
}

public sealed class CompleteBackupHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<CompleteBackup>
{
    public async ValueTask<Unit> Handle(CompleteBackup c, CancellationToken ct)
    {
        var (rp, version) = await session.LoadAsync<RecoveryPoint>(c.RecoveryPointId, RecoveryPoint.Next, ct);
        var created = RecoveryPoint.Complete(rp, c.RecoveryPointId, c.AgentId, c.Files, c.Directories, c.SkippedItems, c.BytesRead,
            c.PackIds, c.BytesStored, c.ManifestSha256, clock.GetUtcNow());
        await c.PersistManifest(ct);
        session.AppendExpected(c.RecoveryPointId, version, created);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException($"Backup {c.RecoveryPointId} changed while it was being committed.");
        }
        return Unit.Value;
    }
}
