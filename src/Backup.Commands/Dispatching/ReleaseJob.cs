using Backup.Commands.Common;
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
/// (<see cref="JobReleased"/>), with no backoff and no expiry counted, so the agent's next run claims it on its first poll
/// (nobody else may take another agent's job). The same rules as a heartbeat: only the owning agent (403), only a running
/// job (409), a known job (404). Appended at the version read; when something landed in between (most often the last pack
/// of the interrupted run), the job is read again and the rules decide again, so a release is refused only when the job
/// really ended or was taken back meanwhile.
/// </summary>
public sealed class ReleaseJobHandler(IDocumentStore store, TimeProvider clock, CommandMetadata metadata) : ICommandHandler<ReleaseJob>
{
    private const int Attempts = 3;

    public async ValueTask<Unit> Handle(ReleaseJob c, CancellationToken ct)
    {
        var reason = string.IsNullOrWhiteSpace(c.Reason) ? ReleaseJob.DefaultReason : c.Reason.Trim();
        for (var attempt = 1; ; attempt++)
        {
            // A fresh session per attempt (a lost race poisons the session), so the request's metadata is applied here.
            await using var session = metadata.ApplyTo(store.LightweightSession());
            var job = await session.LoadAsync<QueuedJob>(c.JobId, ct) ?? throw new NotFoundException("Job", c.JobId);
            var now = clock.GetUtcNow();
            var loaded = await session.LoadJobAsync(job.Kind, c.JobId, ct);
            session.AppendExpected(c.JobId, loaded.Version, loaded.Release(c.AgentId, reason, now));
            try
            {
                await session.SaveChangesAsync(ct);
                return Unit.Value;
            }
            catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException) when (attempt < Attempts)
            {
            }
            catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
            {
                throw new ConflictException($"Job {c.JobId} kept changing while it was being released; nothing was released.");
            }
        }
    }
}
