using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Dispatching;

/// <summary>
/// Finds running jobs whose agent stopped renewing the lease and expires it: the job goes back to its agent's
/// queue with backoff, or fails ("agent lost") after the configured number of expiries. And jobs that their agent has
/// not picked up within <see cref="JobLeaseOptions.PickupTimeout"/>: they fail with the reason (and the alert of their
/// kind). Every worker may run one: the events are appended at the stream version that was read, so only one reaper
/// ends a given job.
/// </summary>
public sealed class LeaseReaper(IDocumentStore store, TimeProvider clock, IOptions<JobLeaseOptions> options, ILogger<LeaseReaper> log)
    : BackgroundService
{
    private static readonly CommandMetadata Worker = new() { Actor = "worker:lease-reaper" };

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PeriodicWork.RunAsync(clock, options.Value.ReaperInterval, async (now, ct) =>
            {
                await ReapAsync(now, ct);
                await FailUnclaimedAsync(now, ct);
            }, log,
            "Looking for expired job leases and jobs not picked up", stoppingToken,
            new Leadership(() => store, "lease reaper", log));

    /// <summary>Expires every lease that ran out before <paramref name="now"/>; returns how many this reaper expired.</summary>
    public async Task<int> ReapAsync(DateTimeOffset now, CancellationToken ct)
    {
        var lease = options.Value;
        var startedBefore = now - lease.Duration;
        IReadOnlyList<QueuedJob> expired;
        await using (var query = store.QuerySession())
        {
            expired = await query.Query<QueuedJob>()
                .Where(j => j.State == QueuedJobState.Running
                            && (j.LeaseExpiresAt < now || (j.LeaseExpiresAt == null && j.StartedAt < startedBefore)))
                .OrderBy(j => j.QueuedAt)
                .Take(100)
                .ToListAsync(ct);
        }

        var count = 0;
        foreach (var job in expired)
        {
            await using var session = Worker.ApplyTo(store.LightweightSession());
            try
            {
                // A heartbeat may have landed since the query: read the lease again next to the stream.
                var current = await session.LoadAsync<QueuedJob>(job.Id, ct);
                if (current is null || current.State != QueuedJobState.Running || !Expired(current, now, lease)) continue;

                var loaded = await session.LoadJobAsync(job.Kind, job.Id, ct);
                if (loaded.Phase != JobPhase.Running) continue;
                var events = loaded.ExpireLease(lease, now);
                session.AppendExpected(job.Id, loaded.Version, events);
                await session.SaveChangesAsync(ct);
                count++;
                var outcome = events[^1] is JobRequeued requeued ? $"re-queued, not before {requeued.NotBefore:O}" : "failed: agent lost";
                log.LogWarning("Lease of {Kind} job {JobId} on agent {AgentId} expired ({Attempt}); {Outcome}",
                    job.Kind, job.Id, job.AgentId, ((JobLeaseExpired)events[0]).Attempt, outcome);
            }
            catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
            {
                // Another reaper (or the agent finishing just now) got there first.
            }
        }
        return count;
    }

    /// <summary>Fails every job still queued <see cref="JobLeaseOptions.PickupTimeout"/> after it could first be claimed; returns how many.</summary>
    public async Task<int> FailUnclaimedAsync(DateTimeOffset now, CancellationToken ct)
    {
        var timeout = options.Value.PickupTimeout;
        var cutoff = now - timeout;
        IReadOnlyList<QueuedJob> stale;
        await using (var query = store.QuerySession())
        {
            stale = await query.Query<QueuedJob>()
                .Where(j => j.State == QueuedJobState.Queued
                            && ((j.NotBefore == null && j.QueuedAt < cutoff) || (j.NotBefore != null && j.NotBefore < cutoff)))
                .OrderBy(j => j.QueuedAt)
                .Take(100)
                .ToListAsync(ct);
        }

        var count = 0;
        foreach (var job in stale)
        {
            await using var session = Worker.ApplyTo(store.LightweightSession());
            var since = job.NotBefore ?? job.QueuedAt;
            var reason = JobLifecycle.NotPickedUpReason(timeout, since, (await session.LoadAsync<AgentContact>(job.AgentId, ct))?.LastPolledAt);
            var loaded = await session.LoadJobAsync(job.Kind, job.Id, ct);
            var failed = loaded.Cancel(reason, now);
            if (failed is null) continue; // claimed, or ended, since the query
            session.AppendExpected(job.Id, loaded.Version, failed);
            try
            {
                await session.SaveChangesAsync(ct);
                count++;
                log.LogWarning("{Kind} job {JobId} failed: {Reason}", job.Kind, job.Id, reason);
            }
            catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
            {
                // Claimed by its agent (or ended by another reaper) just now.
            }
        }
        return count;
    }

    private static bool Expired(QueuedJob job, DateTimeOffset now, JobLeaseOptions lease) =>
        job.LeaseExpiresAt is { } expiresAt ? expiresAt < now : job.StartedAt < now - lease.Duration;
}
