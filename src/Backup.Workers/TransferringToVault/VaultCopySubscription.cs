using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using JasperFx.Events.Daemon;
using JasperFx.Events.Projections;
using Marten;
using Marten.Subscriptions;

namespace Backup.Workers.TransferringToVault;

/// <summary>
/// Reacts to every new recovery point by copying it to the vault, unless its group has an online policy: then the copy
/// waits for the group's <see cref="OnlineBackupDue"/>, which copies the latest recovery points not yet in the vault
/// (<see cref="VaultCopyPlan"/>). Runs in the async daemon, so with several
/// workers exactly one (the HotCold leader) processes each event; its position advances only after the copy,
/// so a worker that dies mid-copy leaves the event to be processed again, and the copy resumes.
/// <para>
/// A stopping worker interrupts its copy at once: the copy also listens to the host's stopping signal, so it never holds
/// the shutdown whatever the daemon does with its own token when it drains its pages. Interrupted, the page is not marked
/// done, and the next leader (this worker restarted, or another one) copies on from the last recorded pack.
/// </para>
/// </summary>
public sealed class VaultCopySubscription : SubscriptionBase
{
    public const string SubscriptionId = "vault-copy";
    public const string Actor = "worker:" + SubscriptionId;
    private readonly VaultCopier _copier;
    private readonly CancellationToken _stopping;

    public VaultCopySubscription(VaultCopier copier, IHostApplicationLifetime lifetime)
    {
        _copier = copier;
        _stopping = lifetime.ApplicationStopping;
        Name = SubscriptionId;
        IncludeType<RecoveryPointCreated>();
        IncludeType<OnlineBackupDue>();
    }

    public override async Task<IChangeListener> ProcessEventsAsync(
        EventRange page, ISubscriptionController controller, IDocumentOperations operations, CancellationToken daemonToken)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(daemonToken, _stopping);
        var cancellationToken = stop.Token;
        foreach (var e in page.Events)
        {
            // The copy's events continue the story of the request that created the recovery point (or of the online schedule).
            var metadata = new CommandMetadata { CorrelationId = e.CorrelationId, CausationId = e.Id.ToString(), Actor = Actor };
            if (e.Data is RecoveryPointCreated created && await VaultCopyPlan.CopiesRightAwayAsync(operations, created.DataSourceId, cancellationToken))
            {
                await _copier.CopyAsync(created.RecoveryPointId, created.PackIds, metadata, cancellationToken);
            }
            else if (e.Data is OnlineBackupDue due)
            {
                foreach (var point in await VaultCopyPlan.DueOnlineAsync(operations, due.GroupId, cancellationToken))
                    await _copier.CopyAsync(point.Id, point.PackIds, metadata, cancellationToken);
            }
        }
        return NullChangeListener.Instance;
    }
}
