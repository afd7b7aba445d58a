using Backup.Commands.Common;
using Marten;
using Marten.Patching;
using Mediator;
using Microsoft.Extensions.Options;

namespace Backup.Commands.Dispatching;

/// <summary>An agent's heartbeat for the job it is running: the lease now runs until the returned time.</summary>
public sealed record RenewJobLease(Guid AgentId, Guid JobId) : ICommand<DateTimeOffset>;

/// <summary>
/// Renewals are a plain update of <see cref="QueuedJob.LeaseExpiresAt"/>, not events: a heartbeat every
/// lease/3 per running job would bury the catalog's meaningful history in noise, and nothing downstream
/// needs it. What is worth keeping is in events: the claim (started), an expiry, a re-queue, the failure.
/// The decider still rules who may renew: only the owning agent, only while its job runs (404/403/409).
/// </summary>
public sealed class RenewJobLeaseHandler(IDocumentSession session, TimeProvider clock, IOptions<JobLeaseOptions> leases)
    : ICommandHandler<RenewJobLease, DateTimeOffset>
{
    public async ValueTask<DateTimeOffset> Handle(RenewJobLease c, CancellationToken ct)
    {
        var job = await session.LoadAsync<QueuedJob>(c.JobId, ct) ?? throw new NotFoundException("Job", c.JobId);
        (await session.LoadJobAsync(job.Kind, c.JobId, ct)).RenewLease(c.AgentId);

        var expiresAt = clock.GetUtcNow() + leases.Value.Duration;
        session.Patch<QueuedJob>(c.JobId).Set(j => j.LeaseExpiresAt, expiresAt);
        await session.SaveChangesAsync(ct);
        return expiresAt;
    }
}
