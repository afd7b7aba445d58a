using Backup.Commands.Common;
using Backup.Storage.Contracts;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Dispatching;

/// <summary>An agent reports that the job it runs (of any kind) could not be done, and why.</summary>
public sealed record FailJob(Guid AgentId, JobKind Kind, Guid JobId, string Reason) : ICommand;

public sealed class FailJobValidator : AbstractValidator<FailJob>
{
    public FailJobValidator() => RuleFor(x => x.Reason).NotEmpty().MaximumLength(4000);
}

/// <summary>Only the owning agent (403), only before the job ended (409), a known job (404): <see cref="JobLifecycle.Fail{T}"/>.</summary>
public sealed class FailJobHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<FailJob>
{
    public async ValueTask<Unit> Handle(FailJob c, CancellationToken ct)
    {
        var job = await session.LoadJobAsync(c.Kind, c.JobId, ct);
        session.AppendExpected(c.JobId, job.Version, job.Fail(c.AgentId, c.Reason, clock.GetUtcNow()));
        await session.SaveChangesAsync(ct);
        return Unit.Value;
    }
}
