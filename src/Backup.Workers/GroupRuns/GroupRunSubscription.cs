using Backup.Commands.Common;
using Backup.Commands.GroupRuns;
using Backup.Commands.RecoveryPoints;
using JasperFx.Events;
using JasperFx.Events.Daemon;
using JasperFx.Events.Projections;
using Marten;
using Marten.Subscriptions;

namespace Backup.Workers.GroupRuns;

/// <summary>
/// Follows the members of group runs: a member's first start, its recovery point created or failed (by its agent, a lost
/// lease, an agent that never picked it up, its data source removed), and the run's completion once every member ended,
/// each appended to the run's stream. Runs in the async daemon, so one worker handles each event; what it appends is
/// committed with its progress, and a re-delivered event finds its member already recorded (the decisions are idempotent).
/// </summary>
public sealed class GroupRunSubscription : SubscriptionBase
{
    public const string SubscriptionId = "group-runs";
    public const string Actor = "worker:" + SubscriptionId;

    public GroupRunSubscription()
    {
        Name = SubscriptionId;
        IncludeType<BackupStarted>();
        IncludeType<RecoveryPointCreated>();
        IncludeType<RecoveryPointFailed>();
    }

    public override async Task<IChangeListener> ProcessEventsAsync(
        EventRange page, ISubscriptionController controller, IDocumentOperations operations, CancellationToken cancellationToken)
    {
        var points = page.Events.Select(e => e.Data switch
        {
            BackupStarted s => s.RecoveryPointId,
            RecoveryPointCreated c => c.RecoveryPointId,
            RecoveryPointFailed f => f.RecoveryPointId,
            _ => Guid.Empty,
        }).Where(id => id != Guid.Empty).Distinct().ToArray();
        if (points.Length == 0) return NullChangeListener.Instance;

        // A member's stream holds BackupInGroupRun at version 2, written with its request: one indexed query for the page.
        var memberships = (await operations.Events.QueryAllRawEvents()
                .Where(e => e.StreamId.IsOneOf(points) && e.Version == 2)
                .ToListAsync(cancellationToken))
            .Select(e => e.Data).OfType<BackupInGroupRun>().ToDictionary(m => m.RecoveryPointId, m => m.RunId);
        if (memberships.Count == 0) return NullChangeListener.Instance;

        // Runs are folded here as the page's decisions are made: several members of one run may end in one page. Appended
        // without an expected version: only this subscription (one leader at a time) writes to a run after its request, and
        // its decisions are idempotent over the fold (the daemon's batch does not check a version read in the same page).
        var runs = new Dictionary<Guid, GroupRun?>();
        foreach (var e in page.Events)
        {
            var (pointId, decide) = e.Data switch
            {
                BackupStarted s => (s.RecoveryPointId, (Func<GroupRun, IReadOnlyList<object>>)(run => run.MemberStarted(s.RecoveryPointId, s.StartedAt))),
                RecoveryPointCreated c => (c.RecoveryPointId, run => run.MemberEnded(c.RecoveryPointId, null, c.CreatedAt)),
                RecoveryPointFailed f => (f.RecoveryPointId, run => run.MemberEnded(f.RecoveryPointId, f.Reason, f.FailedAt)),
                _ => (Guid.Empty, _ => []),
            };
            if (!memberships.TryGetValue(pointId, out var runId)) continue;
            if (!runs.TryGetValue(runId, out var run)) runs[runId] = run = (await operations.LoadAsync<GroupRun>(runId, GroupRun.Next, cancellationToken)).State;
            if (run is null) continue;
            var decided = decide(run);
            if (decided.Count == 0) continue;
            // The run's events continue the story of the member event that caused them.
            var stream = operations.Events.Append(runId, [.. decided]);
            foreach (var appended in stream.Events)
            {
                appended.CorrelationId = e.CorrelationId;
                appended.CausationId = e.Id.ToString();
                appended.SetHeader(CommandMetadata.ActorHeader, Actor);
            }
            runs[runId] = decided.Aggregate(run, (state, d) => GroupRun.Next(state, d)!);
        }
        return NullChangeListener.Instance;
    }
}
