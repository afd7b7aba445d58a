using Backup.Commands.Common;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Restores;

/// <summary><see cref="Failed"/>: items the agent could not write (the restore then completed with errors).</summary>
public sealed record CompleteRestore(
    Guid AgentId, Guid RestoreId, int Files, long Bytes, int SkippedExisting = 0, IReadOnlyList<RestoreItemFailure>? Failed = null) : ICommand;

public sealed class CompleteRestoreValidator : AbstractValidator<CompleteRestore>
{
    public CompleteRestoreValidator()
    {
        RuleFor(x => x.Files).GreaterThanOrEqualTo(0);
        RuleFor(x => x.Bytes).GreaterThanOrEqualTo(0);
        RuleFor(x => x.SkippedExisting).GreaterThanOrEqualTo(0);
        RuleForEach(x => x.Failed).ChildRules(item =>
        {
            item.RuleFor(i => i.Path).NotEmpty().MaximumLength(8_192);
            item.RuleFor(i => i.Reason).NotEmpty().MaximumLength(2_000);
        });
    }
}

public sealed class CompleteRestoreHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<CompleteRestore>
{
    public async ValueTask<Unit> Handle(CompleteRestore c, CancellationToken ct)
    {
        var (restore, version) = await session.LoadAsync<Restore>(c.RestoreId, Restore.Next, ct);
        var now = clock.GetUtcNow();
        var completed = Restore.Complete(restore, c.RestoreId, c.AgentId, c.Files, c.Bytes, c.SkippedExisting, now);
        session.AppendExpected(c.RestoreId, version,
            c.Failed is { Count: > 0 } failed ? [RestoreItemsFailed.Of(c.RestoreId, failed, now), completed] : [completed]);
        await session.SaveChangesAsync(ct);
        return Unit.Value;
    }
}
