using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.RemovingDataSources;
using Backup.Commands.Restores;
using Backup.Commands.Synchronising;
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
                if (job.Kind == QueuedJobKind.Backup)
                {
                    var (rp, version) = await session.LoadAsync<RecoveryPoint>(job.Id, RecoveryPoint.Next, ct);
                    if (rp?.Status != RecoveryPointStatus.Requested) continue;
                    if (!await ClaimOfSourceAsync(session, job, rp.DataSourceId, version,
                            reason => RecoveryPoint.Cancel(rp, reason, now)!, () => RecoveryPoint.Start(rp, job.Id, command.AgentId, now), ct)) continue;
                }
                else if (job.Kind == QueuedJobKind.Synchronisation)
                {
                    var (sync, version) = await session.LoadAsync<Synchronisation>(job.Id, Synchronisation.Next, ct);
                    if (sync?.Status != SyncStatus.Requested) continue;
                    if (!await ClaimOfSourceAsync(session, job, sync.DataSourceId, version,
                            reason => Synchronisation.Cancel(sync, reason, now)!, () => Synchronisation.Start(sync, job.Id, command.AgentId, now), ct)) continue;
                }
                else
                {
                    var (restore, version) = await session.LoadAsync<Restore>(job.Id, Restore.Next, ct);
                    if (restore?.Status != RestoreStatus.Requested) continue;
                    session.AppendExpected(job.Id, version, Restore.Start(restore, job.Id, command.AgentId, now));
                }
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
    /// in force now and its start is appended.
    /// </summary>
    private static async Task<bool> ClaimOfSourceAsync(
        IDocumentSession session, QueuedJob job, Guid dataSourceId, long version, Func<string, object> cancel, Func<object> start, CancellationToken ct)
    {
        var (source, _) = await session.LoadAsync<DataSource>(dataSourceId, DataSource.Next, ct);
        if (source?.Removed is not null)
        {
            session.AppendExpected(job.Id, version, cancel(RemoveDataSourceHandler.CancelledReason));
            await session.SaveChangesAsync(ct);
            return false;
        }
        job.Include = source is null ? null : [.. source.Include];
        job.Exclude = source is null ? null : [.. source.Exclude];
        session.AppendExpected(job.Id, version, start());
        return true;
    }
}
