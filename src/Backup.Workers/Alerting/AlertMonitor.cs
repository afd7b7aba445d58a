using Backup.Commands.Alerts;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Projections.Agents;
using Backup.Projections.Alerts;
using Backup.Projections.DataSources;
using Backup.Projections.Jobs;
using Backup.Projections.ProtectionGroups;
using Backup.Projections.RecoveryPoints;
using Backup.Storage.Contracts;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Alerting;

/// <summary>An alert this monitor raised or resolved.</summary>
public sealed record AlertChange(AlertKind Kind, Guid SubjectId, bool Raised);

/// <summary>
/// Raises and resolves alerts by checking their conditions on a timer (the injected <see cref="TimeProvider"/>):
/// <list type="bullet">
/// <item>missed backup: no recovery point of a data source (or, before its first, since it was protected) for longer than its group's
/// alert threshold; resolved once a recent one exists;</item>
/// <item>backup failed: the latest finished backup of a data source failed (by the agent, or "agent lost" after the lease retries);
/// resolved by the next recovery point created;</item>
/// <item>agent lost: no poll for <see cref="AlertOptions.AgentLostAfter"/>; resolved when it polls again;</item>
/// <item>vault transfer failed: the online copy of a recovery point failed; resolved when the copy completes;</item>
/// <item>sync failed: the latest synchronisation of a data source failed (by the agent, or "agent lost"); resolved by the next
/// synchronisation that succeeds or a recovery point created after it.</item>
/// </list>
/// Time conditions need a clock, so a check rather than a subscription decides them all, in one place. Every worker may run
/// one: each alert is a stream with a deterministic id (<see cref="Alert.IdFor"/>) appended at the version that was read,
/// so concurrent monitors raise or resolve it once.
/// </summary>
public sealed class AlertMonitor(IServiceProvider services, TimeProvider clock, IOptions<AlertOptions> options, ILogger<AlertMonitor> log)
    : BackgroundService
{
    public const string Actor = "worker:alerts";

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PeriodicWork.RunAsync(clock, options.Value.CheckInterval, (now, ct) => CheckAsync(now, ct), log,
            "Checking alert conditions", stoppingToken,
            new Leadership(services, "alert monitor", log));

    /// <summary>Raises every alert whose condition holds at <paramref name="now"/> and resolves every active one whose condition cleared.</summary>
    /// <returns>What this monitor changed (not what another monitor changed first).</returns>
    public async Task<IReadOnlyList<AlertChange>> CheckAsync(DateTimeOffset now, CancellationToken ct)
    {
        // Resolved late, like the scheduler's: the store is built from the host's services.
        var store = services.GetRequiredService<IDocumentStore>();
        var conditions = await ConditionsAsync(store, now, ct);
        var changes = new List<AlertChange>();
        foreach (var c in conditions.Raise)
        {
            ct.ThrowIfCancellationRequested();
            if (await DecideAsync(store, c.Kind, c.SubjectId, alert => Alert.Raise(alert, c.Kind, c.SubjectId, c.Scope, c.Message, now), ct))
            {
                changes.Add(new AlertChange(c.Kind, c.SubjectId, Raised: true));
                log.LogWarning("Alert {Kind} raised: {Message}", c.Kind, c.Message);
            }
        }
        foreach (var (alert, resolution) in conditions.Resolve)
        {
            ct.ThrowIfCancellationRequested();
            if (await DecideAsync(store, alert.Kind, alert.SubjectId, state => Alert.Resolve(state, resolution, now), ct))
            {
                changes.Add(new AlertChange(alert.Kind, alert.SubjectId, Raised: false));
                log.LogInformation("Alert {Kind} on {Subject} resolved: {Resolution}", alert.Kind, alert.SubjectId, resolution);
            }
        }
        return changes;
    }

    private sealed record Condition(AlertKind Kind, Guid SubjectId, AlertScope Scope, string Message);

    private sealed record Conditions(List<Condition> Raise, List<(AlertView Alert, string Resolution)> Resolve);

    private async Task<Conditions> ConditionsAsync(IDocumentStore store, DateTimeOffset now, CancellationToken ct)
    {
        await using var query = store.QuerySession();
        var active = (await query.Query<AlertView>().Where(a => a.Status == AlertStatus.Active).ToListAsync(ct)).ToDictionary(a => a.Id);
        var groups = (await query.Query<ProtectionGroupView>().ToListAsync(ct)).ToDictionary(g => g.Id);
        var sources = await query.Query<DataSourceView>().ToListAsync(ct);
        var agents = await query.Query<AgentView>().ToListAsync(ct);
        var contacts = (await query.Query<AgentContact>().ToListAsync(ct)).ToDictionary(c => c.Id);

        // The latest finished backup and the latest recovery point of each data source, in one round trip.
        var batch = query.CreateBatchQuery();
        var latest = sources.ToDictionary(s => s.Id, s => (
            Finished: batch.Query<RecoveryPointView>()
                .Where(r => r.DataSourceId == s.Id && (r.Status == RecoveryPointStatus.Created || r.Status == RecoveryPointStatus.Failed))
                .OrderByDescending(r => r.Sequence).Take(1).ToList(),
            Created: batch.Query<RecoveryPointView>()
                .Where(r => r.DataSourceId == s.Id && r.Status == RecoveryPointStatus.Created)
                .OrderByDescending(r => r.CreatedAt).Take(1).ToList(),
            Synced: batch.Query<JobView>()
                .Where(j => j.DataSourceId == s.Id && j.Kind == JobKind.Synchronisation && (j.State == JobState.Succeeded || j.State == JobState.Failed))
                .OrderByDescending(j => j.Sequence).Take(1).ToList()));
        var vaultFailures = batch.Query<RecoveryPointView>().Where(r => r.VaultError != null && !r.InVault).ToList();
        var activeTransfers = active.Values.Where(a => a.Kind == AlertKind.VaultTransferFailed).Select(a => a.SubjectId).ToArray();
        var transfersDone = batch.Query<RecoveryPointView>().Where(r => r.Id.IsOneOf(activeTransfers) && r.InVault).ToList();
        await batch.Execute(ct);

        var raise = new List<Condition>();
        var resolve = new List<(AlertView, string)>();
        void Holds(AlertKind kind, Guid subject, AlertScope scope, string message)
        {
            if (!active.ContainsKey(Alert.IdFor(kind, subject))) raise.Add(new Condition(kind, subject, scope, message));
        }
        void Clears(AlertKind kind, Guid subject, string resolution)
        {
            if (active.TryGetValue(Alert.IdFor(kind, subject), out var alert)) resolve.Add((alert, resolution));
        }

        foreach (var source in sources)
        {
            if (source.RemovedAt is { } removedAt)
            {
                // No longer protected: nothing to miss, and a past failure is no longer anyone's to fix.
                Clears(AlertKind.BackupFailed, source.Id, $"data source removed from protection at {removedAt:O}");
                Clears(AlertKind.MissedBackup, source.Id, $"data source removed from protection at {removedAt:O}");
                Clears(AlertKind.SyncFailed, source.Id, $"data source removed from protection at {removedAt:O}");
                continue;
            }
            var finished = (await latest[source.Id].Finished).FirstOrDefault();
            var created = (await latest[source.Id].Created).FirstOrDefault();
            var scope = new AlertScope(source.GroupId, source.Id, source.AgentId);

            if (finished is { Status: RecoveryPointStatus.Failed })
                Holds(AlertKind.BackupFailed, source.Id, scope with { RecoveryPointId = finished.Id },
                    $"Backup {finished.Id} of {source.Path} failed: {finished.FailureReason}");
            else if (finished is not null)
                Clears(AlertKind.BackupFailed, source.Id, $"recovery point {finished.Id} created at {finished.CreatedAt:O}");

            var synced = (await latest[source.Id].Synced).FirstOrDefault();
            if (synced is { State: JobState.Failed } && !(created?.CreatedAt > synced.FinishedAt))
                Holds(AlertKind.SyncFailed, source.Id, scope,
                    $"Synchronisation {synced.Id} of {source.Path} failed: {synced.FailureReason}");
            else if (synced is { State: JobState.Failed })
                Clears(AlertKind.SyncFailed, source.Id, $"recovery point {created!.Id} created at {created.CreatedAt:O}");
            else if (synced is not null)
                Clears(AlertKind.SyncFailed, source.Id, $"synchronisation {synced.Id} succeeded at {synced.FinishedAt:O}");

            if (groups.GetValueOrDefault(source.GroupId)?.AlertThresholdDays is not { } days) continue;
            var since = created?.CreatedAt ?? source.ProtectedAt;
            if (now - since > TimeSpan.FromDays(days))
                Holds(AlertKind.MissedBackup, source.Id, scope,
                    created is null
                        ? $"No recovery point of {source.Path} since it was protected at {since:O} (threshold {days} days)"
                        : $"No recovery point of {source.Path} since {since:O} (threshold {days} days)");
            else
                Clears(AlertKind.MissedBackup, source.Id, created is null ? "within the threshold" : $"recovery point {created.Id} created at {since:O}");
        }

        var lostAfter = options.Value.AgentLostAfter;
        foreach (var agent in agents)
        {
            var seen = contacts.GetValueOrDefault(agent.Id)?.LastPolledAt ?? agent.EnrolledAt;
            if (now - seen > lostAfter)
                Holds(AlertKind.AgentLost, agent.Id, new AlertScope(AgentId: agent.Id),
                    $"Agent {agent.MachineName} ({agent.Id}) has not polled for jobs since {seen:O}");
            else
                Clears(AlertKind.AgentLost, agent.Id, $"agent polled at {seen:O}");
        }

        foreach (var rp in await vaultFailures)
            Holds(AlertKind.VaultTransferFailed, rp.Id, new AlertScope(rp.GroupId, rp.DataSourceId, rp.AgentId, rp.Id),
                $"Copy of recovery point {rp.Id} to the vault failed: {rp.VaultError}");
        foreach (var rp in await transfersDone)
            Clears(AlertKind.VaultTransferFailed, rp.Id, $"copied to the vault at {rp.CopiedToVaultAt:O}");

        return new Conditions(raise, resolve);
    }

    /// <summary>Appends what <paramref name="decide"/> makes of the alert's current state, unless another monitor got there first.</summary>
    private static async Task<bool> DecideAsync(IDocumentStore store, AlertKind kind, Guid subjectId, Func<Alert?, object?> decide, CancellationToken ct)
    {
        var id = Alert.IdFor(kind, subjectId);
        var metadata = new CommandMetadata { Actor = Actor, CorrelationId = $"alert:{id}" };
        await using var session = metadata.ApplyTo(store.LightweightSession());
        var (state, version) = await session.LoadAsync<Alert>(id, Alert.Next, ct);
        if (decide(state) is not { } @event) return false;
        if (version == 0) session.Events.StartStream<Alert>(id, @event);
        else session.AppendExpected(id, version, @event);
        try
        {
            await session.SaveChangesAsync(ct);
            return true;
        }
        catch (Exception e) when (e is Marten.Exceptions.ExistingStreamIdCollisionException or EventStreamUnexpectedMaxEventIdException)
        {
            // Another monitor raised or resolved it first.
            return false;
        }
    }
}
