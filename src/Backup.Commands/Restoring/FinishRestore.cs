using Backup.Commands.Common;
using Backup.Commands.Restores;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Restoring;

public sealed record CompleteRestore(Guid AgentId, Guid RestoreId, int Files, long Bytes, int SkippedExisting = 0) : ICommand;

public sealed class CompleteRestoreValidator : AbstractValidator<CompleteRestore>
{
    public CompleteRestoreValidator()
    {
        RuleFor(x => x.Files).GreaterThanOrEqualTo(0);
        RuleFor(x => x.Bytes).GreaterThanOrEqualTo(0);
        RuleFor(x => x.SkippedExisting).GreaterThanOrEqualTo(0);
    }
}

public sealed class CompleteRestoreHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<CompleteRestore>
{
    public async ValueTask<Unit> Handle(CompleteRestore c, CancellationToken ct)
    {
        var (restore, version) = await session.LoadAsync<Restore>(c.RestoreId, Restore.Next, ct);
        session.AppendExpected(c.RestoreId, version, Restore.Complete(restore, c.RestoreId, c.AgentId, c.Files, c.Bytes, c.SkippedExisting, clock.GetUtcNow()));
        await session.SaveChangesAsync(ct);
        return Unit.Value;
    }
}
