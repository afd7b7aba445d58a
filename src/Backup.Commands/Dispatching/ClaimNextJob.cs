using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Marten;
using Marten.Patching;
using Mediator;
using Microsoft.Extensions.Options;

namespace Backup.Commands.Dispatching;

/// <summary>An agent asks for its next job; null when there is none.</summary>
public sealed record ClaimNextJob(Guid AgentId) : ICommand<QueuedJob?>;

/// <summary>
/// Claims the oldest queued job of the agent by appending its "started" event at the version it was read
/// at: two polls racing for one job cannot both win, the loser moves on to the next job.
/// </summary>
public sealed class ClaimNextJobHandler(IDocumentStore store, TimeProvider clock, CommandMetadata metadata, IOptions<JobLeaseOptions> leases) : ICommandHandler<ClaimNextJob, QueuedJob?>
{
    public async ValueTask<QueuedJob?> Handle(ClaimNextJob command, CancellationToken ct)
    {
        IReadOnlyList<QueuedJob> candidates;
        var now = clock.GetUtcNow();
        await using (var contact = store.LightweightSession())
        {
            contact.Store(new AgentContact { Id = command.AgentId, LastPolledAt = now });
            await contact.SaveChangesAsync(ct);
        }
        await using (var query = store.QuerySession())
        {
            candidates = await query.Query<QueuedJob>()
                .Where(j => j.AgentId == command.AgentId && j.State == QueuedJobState.Queued && (j.NotBefore == null || j.NotBefore <= now))
                .OrderBy(j => j.QueuedAt)
                .Take(10)
                .ToListAsync(ct);
        }

        foreach (var job in candidates)
        {
            // A fresh session per attempt (a lost race poisons the session), so the request's metadata is applied here.
            await using var session = metadata.ApplyTo(store.LightweightSession());
            try
            {
                var loaded = await session.LoadJobAsync(job.Kind, job.Id, ct);
                if (loaded.Phase != JobPhase.Requested) continue;
                if (loaded.DataSourceId is { } sourceId && !await ClaimOfSourceAsync(session, job, loaded, sourceId, now, ct)) continue;
                session.AppendExpected(job.Id, loaded.Version, loaded.Start(command.AgentId, now));
                await session.SaveChangesAsync(ct);
                job.State = QueuedJobState.Running;
                job.StartedAt = now;
                job.LeaseExpiresAt = now + leases.Value.Duration;
                // The lease is a document field (heartbeats move it without events); until this lands the reaper reads StartedAt + Duration.
                await using var lease = store.LightweightSession();
                lease.Patch<QueuedJob>(job.Id).Set(j => j.LeaseExpiresAt, job.LeaseExpiresAt);
                await lease.SaveChangesAsync(ct);
                return job;
            }
            catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
            {
                // Another poll took it first.
            }
        }
        return null;
    }

    /// <summary>
    /// A backup or synchronisation reads its data source: one requested just before the source was removed (a scheduler
    /// working from a moment-old view) is refused with the reason and false is returned; otherwise the job gets the patterns
    /// in force now.
    /// </summary>
    private static async Task<bool> ClaimOfSourceAsync(
        IDocumentSession session, QueuedJob job, LoadedJob loaded, Guid dataSourceId, DateTimeOffset now, CancellationToken ct)
    {
        var (source, _) = await session.LoadAsync<DataSource>(dataSourceId, DataSource.Next, ct);
        if (source?.Removed is not null)
        {
            session.AppendExpected(job.Id, loaded.Version, loaded.Cancel(RemoveDataSourceHandler.CancelledReason, now)!);
            await session.SaveChangesAsync(ct);
            return false;
        }
        job.Include = source is null ? null : [.. source.Include];
        job.Exclude = source is null ? null : [.. source.Exclude];
        return true;
    }
}
