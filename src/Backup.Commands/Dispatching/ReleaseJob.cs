using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Dispatching;

/// <summary>An agent gives back the job it is running, because it is stopping; blank reason = "agent stopping".</summary>
public sealed record ReleaseJob(Guid AgentId, Guid JobId, string? Reason) : ICommand
{
    public const string DefaultReason = "agent stopping";
}

public sealed class ReleaseJobValidator : AbstractValidator<ReleaseJob>
{
    public ReleaseJobValidator() => RuleFor(x => x.Reason).MaximumLength(500);
}

/// <summary>
/// A stopping agent hands its job back rather than leaving it to the lease reaper: the job is queued again at once
/// (<see cref="JobReleased"/>), with no backoff and no expiry counted, so the agent's next run (or, for nobody else may
/// take another agent's job, this one restarted) claims it on its first poll. The same rules as a heartbeat: only the
/// owning agent (403), only a running job (409), a known job (404). Appended at the version read, so a release racing
/// the reaper or a commit is refused rather than applied on top of it.
/// </summary>
public sealed class ReleaseJobHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<ReleaseJob>
{
    public async ValueTask<Unit> Handle(ReleaseJob c, CancellationToken ct)
    {
        var job = await session.LoadAsync<QueuedJob>(c.JobId, ct) ?? throw new NotFoundException("Job", c.JobId);
        var reason = string.IsNullOrWhiteSpace(c.Reason) ? ReleaseJob.DefaultReason : c.Reason.Trim();
        var now = clock.GetUtcNow();
        if (job.Kind == QueuedJobKind.Backup)
        {
            var (rp, version) = await session.LoadAsync<RecoveryPoint>(c.JobId, RecoveryPoint.Next, ct);
            session.AppendExpected(c.JobId, version, RecoveryPoint.Release(rp, c.JobId, c.AgentId, reason, now));
        }
        else
        {
            var (restore, version) = await session.LoadAsync<Restore>(c.JobId, Restore.Next, ct);
            session.AppendExpected(c.JobId, version, Restore.Release(restore, c.JobId, c.AgentId, reason, now));
        }
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException($"Job {c.JobId} changed while it was being released (its lease expired, or it ended); nothing was released.");
        }
        return Unit.Value;
    }
}
