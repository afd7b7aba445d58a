using JasperFx.Events.Daemon;
using JasperFx.Events.Projections;
using Marten;
using Marten.Subscriptions;

namespace Backup.Projections.Auditing;

/// <summary>
/// Extends the hash chain as the daemon sees new events. A subscription (not a projection) because the daemon hands
/// it pages strictly in sequence order, one at a time, and commits the links it stores through
/// <see cref="IDocumentOperations"/> in the same transaction as its progress: after a crash the page is chained again
/// from the last committed link, and re-storing a link is idempotent.
/// </summary>
public sealed class AuditChainSubscription : SubscriptionBase
{
    public const string SubscriptionId = "audit-chain";

    public AuditChainSubscription()
    {
        Name = SubscriptionId;
        // No event type filter: every event is chained, whatever its type.
    }

    public override async Task<IChangeListener> ProcessEventsAsync(
        EventRange page, ISubscriptionController controller, IDocumentOperations operations, CancellationToken cancellationToken)
    {
        // The page's range rather than page.Events: the chain hashes every row in mt_events as stored, exactly as the
        // verifier reads them back.
        var rows = await EventRows.ReadAsync(operations, page.SequenceFloor, page.SequenceCeiling, cancellationToken);
        if (rows.Count == 0) return NullChangeListener.Instance;

        var last = await operations.Query<AuditLink>()
            .Where(l => l.Id <= page.SequenceFloor)
            .OrderByDescending(l => l.Id)
            .FirstOrDefaultAsync(cancellationToken);
        var previous = last?.Hash ?? AuditChain.Genesis;
        foreach (var e in rows)
        {
            var hash = AuditChain.Link(previous, e);
            operations.Store(new AuditLink
            {
                Id = e.Sequence, StreamId = e.StreamId, EventType = e.EventType, Timestamp = e.Timestamp,
                Hash = hash, PreviousHash = previous,
            });
            previous = hash;
        }
        return NullChangeListener.Instance;
    }
}
