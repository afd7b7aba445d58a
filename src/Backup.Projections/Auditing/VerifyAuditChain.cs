using FluentValidation;
using JasperFx.Events.Projections;
using Marten;
using Mediator;
using Npgsql;

namespace Backup.Projections.Auditing;

/// <summary>
/// Recomputes the chain from the rows in mt_events, from <see cref="From"/> (trusting the stored link before it as a
/// checkpoint) or from the first event, and reports the first link that does not hold.
/// </summary>
public sealed record VerifyAuditChain(long? From) : IQuery<AuditVerification>;

/// <param name="Verified">Events whose link was recomputed and matched.</param>
/// <param name="ChainedThrough">The last sequence the chain has reached; later events are <paramref name="Pending"/>.</param>
/// <param name="HeadHash">The hash of the last link verified: publish it elsewhere to make truncating the tail evident too.</param>
/// <param name="AnchorsChecked">Heads anchored outside the database (in the vault) that the stored chain was compared with.</param>
public sealed record AuditVerification(
    long Verified, bool Intact, long? FirstBrokenSequence, string? Reason, long ChainedThrough, long Pending, string? HeadHash, int AnchorsChecked = 0);

public sealed class VerifyAuditChainValidator : AbstractValidator<VerifyAuditChain>
{
    public VerifyAuditChainValidator() => RuleFor(x => x.From).GreaterThanOrEqualTo(1);
}

public sealed class VerifyAuditChainHandler(IQuerySession session) : IQueryHandler<VerifyAuditChain, AuditVerification>
{
    private const int BatchSize = 1000;

    public async ValueTask<AuditVerification> Handle(VerifyAuditChain query, CancellationToken ct)
    {
        // How far the chain has gone: the subscription's progress, committed with its links, so a deleted newest link
        // does not move the head back and turn its event into one merely pending. Read before the links, which can only
        // be as far or further.
        var progress = await session.Database.ProjectionProgressFor(new ShardName(AuditChainSubscription.SubscriptionId), token: ct);
        var newest = await session.Query<AuditLink>().OrderByDescending(l => l.Id).FirstOrDefaultAsync(ct);
        var head = Math.Max(progress, newest?.Id ?? 0);
        var pending = await CountAfterAsync(head, ct);
        long verified = 0;

        if (await EventRows.FirstBelowOneAsync(session, ct) is { } forged)
            return Broken(forged, $"Event {forged} has a sequence below 1, which PostgreSQL never issues and the chain never reaches: its row was inserted behind the chain.");

        var from = query.From ?? 1;
        var archivedApart = await EventRows.FirstArchivedApartFromItsStreamAsync(session, ct);
        if (archivedApart < from)
            return Broken(archivedApart.Value, ArchivedApart(archivedApart.Value));
        if (from > head)
            return archivedApart is { } beyond ? Broken(beyond, ArchivedApart(beyond)) : new AuditVerification(0, true, null, null, head, pending, newest?.Hash);
        var checkpoint = from <= 1
            ? null
            : await session.Query<AuditLink>().Where(l => l.Id < from).OrderByDescending(l => l.Id).FirstOrDefaultAsync(ct);
        var previous = checkpoint?.Hash ?? AuditChain.Genesis;
        var cursor = from - 1;

        while (cursor < head)
        {
            var links = await session.Query<AuditLink>().Where(l => l.Id > cursor && l.Id <= head).OrderBy(l => l.Id).Take(BatchSize).ToListAsync(ct);
            // Up to the head once the links run out: a row after the newest link but within the chain's progress is one the chain passed.
            var through = links.Count == BatchSize ? links[^1].Id : head;
            var rows = await EventRows.ReadAsync(session, cursor, through, ct);

            int i = 0, j = 0;
            while (i < rows.Count || j < links.Count)
            {
                if (i >= rows.Count || (j < links.Count && links[j].Id < rows[i].Sequence))
                    return Broken(links[j].Id, $"Event {links[j].Id} is chained but missing from the event log: its row was deleted.");
                if (j >= links.Count || rows[i].Sequence < links[j].Id)
                    return Broken(rows[i].Sequence, Unlinked(rows, i, j < links.Count ? links[j] : null, previous, head));

                var (row, link) = (rows[i], links[j]);
                if (!string.Equals(link.PreviousHash, previous, StringComparison.Ordinal))
                    return Broken(row.Sequence, $"The link of event {row.Sequence} does not follow the link before it: the stored chain was edited, or an event before it was deleted together with its link.");
                var hash = AuditChain.Link(previous, row);
                if (!string.Equals(link.Hash, hash, StringComparison.Ordinal))
                    return Broken(row.Sequence, $"Event {row.Sequence} does not match its link: its data or metadata was edited (or its link was).");
                if (row.Sequence == archivedApart)
                    return Broken(row.Sequence, ArchivedApart(row.Sequence));

                previous = hash;
                verified++;
                i++;
                j++;
            }
            cursor = through;
        }
        // Newer than the chain, not linked yet, but hidden from every view already.
        if (archivedApart is { } pendingApart)
            return Broken(pendingApart, ArchivedApart(pendingApart));
        return new AuditVerification(verified, true, null, null, head, pending, verified == 0 ? checkpoint?.Hash : previous);

        AuditVerification Broken(long sequence, string reason) => new(verified, false, sequence, reason, head, pending, null);
    }

    private static string ArchivedApart(long sequence) =>
        $"Event {sequence} is archived apart from its stream: Marten archives whole streams, and an event archived on its own is hidden from every view.";

    /// <summary>
    /// Why rows[i], which the chain has passed, has no link: a row slipped in behind the chain, or a genuine event whose link
    /// was removed. The next link tells them apart: it follows from the missing links if they were deleted, from the link
    /// before if rows were inserted.
    /// </summary>
    private static string Unlinked(List<StoredEvent> rows, int i, AuditLink? next, string previous, long head)
    {
        var first = rows[i].Sequence;
        if (next is not null)
        {
            var hash = previous;
            for (var k = i; k < rows.Count && rows[k].Sequence < next.Id; k++)
            {
                hash = AuditChain.Link(hash, rows[k]);
                if (string.Equals(next.PreviousHash, hash, StringComparison.Ordinal))
                    return k == i
                        ? $"Event {first} is as it was chained but its link was deleted: the next link follows from it."
                        : $"Events {first} to {rows[k].Sequence} are as they were chained but their links were deleted: the next link follows from them.";
            }
            if (string.Equals(next.PreviousHash, previous, StringComparison.Ordinal))
                return $"Event {first} is not in the chain: its row was inserted after the chain had passed it.";
        }
        return $"Event {first} has no link though the chain has passed it (through {head}): its row was inserted after the chain had passed it, or its link was deleted.";
    }

    private async Task<long> CountAfterAsync(long sequence, CancellationToken ct)
    {
        await using var connection = session.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"""SELECT count(*) FROM "{session.Schema()}".mt_events WHERE seq_id > @after""", connection);
        command.Parameters.AddWithValue("after", sequence);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
