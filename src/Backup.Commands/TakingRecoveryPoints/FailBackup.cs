using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.TakingRecoveryPoints;

public sealed record FailBackup(Guid AgentId, Guid RecoveryPointId, string Reason) : ICommand;

public sealed class FailBackupValidator : AbstractValidator<FailBackup>
{
    public FailBackupValidator() => RuleFor(x => x.Reason).NotEmpty().MaximumLength(4000);
}

public sealed class FailBackupHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<FailBackup>
{
    public async ValueTask<Unit> Handle(FailBackup c, CancellationToken ct)
    {
        var (rp, version) = await session.LoadAsync<RecoveryPoint>(c.RecoveryPointId, RecoveryPoint.Next, ct);
        session.AppendExpected(c.RecoveryPointId, version, RecoveryPoint.Fail(rp, c.RecoveryPointId, c.AgentId, c.Reason, clock.GetUtcNow()));
        await session.SaveChangesAsync(ct);
        return Unit.Value;
    }
}
