using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.Common;
using JasperFx.Events.Daemon;
using JasperFx.Events.Projections;
using Marten;
using Marten.Subscriptions;

namespace Backup.Workers.Checking;

/// <summary>
/// The automatic consistency check: a check that found a damaged or missing copy (someone's <c>POST …/check</c>) is
/// followed by the worker's own check of those packs on both tiers, which repairs what it can. Runs in the async daemon,
/// so one worker handles each finding; the check id is derived from the finding, so a re-delivered event is recognised.
/// A stopping worker interrupts the check (see <see cref="TransferringToVault.VaultCopySubscription"/>): nothing is recorded
/// before a check ends, so the next leader runs it again.
/// </summary>
public sealed class ConsistencyRepairSubscription : SubscriptionBase
{
    public const string SubscriptionId = "consistency-repair";
    private readonly ConsistencyChecker _checker;
    private readonly CancellationToken _stopping;

    public ConsistencyRepairSubscription(ConsistencyChecker checker, IHostApplicationLifetime lifetime)
    {
        _checker = checker;
        _stopping = lifetime.ApplicationStopping;
        Name = SubscriptionId;
        IncludeType<RecoveryPointChecked>();
    }

    public override async Task<IChangeListener> ProcessEventsAsync(
        EventRange page, ISubscriptionController controller, IDocumentOperations operations, CancellationToken daemonToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(daemonToken, _stopping);
        var cancellationToken = stop.Token;
        foreach (var e in page.Events)
        {
            if (e.Data is not RecoveryPointChecked { Damaged.Count: > 0 } found || found.CheckedBy == ConsistencyChecker.Actor) continue;
            var checkId = DeterministicGuid.Create($"consistency-repair:{e.Id:N}");
            if ((await operations.Events.FetchStreamStateAsync(checkId, cancellationToken)) is not null) continue; // done before a restart
            await _checker.CheckAsync(checkId, $"inconsistent {found.Tier} copy of recovery point {found.RecoveryPointId} found by {found.CheckedBy}",
                [.. found.Damaged.Select(d => d.PackId)], cancellationToken);
        }
        return NullChangeListener.Instance;
    }
}
