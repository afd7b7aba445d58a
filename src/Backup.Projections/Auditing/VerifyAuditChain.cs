using FluentValidation;
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
        var from = query.From ?? 1;
        var checkpoint = from <= 1
            ? null
            : await session.Query<AuditLink>().Where(l => l.Id < from).OrderByDescending(l => l.Id).FirstOrDefaultAsync(ct);
        var previous = checkpoint?.Hash ?? AuditChain.Genesis;
        var cursor = from - 1;
        long verified = 0;

        while (true)
        {
            var links = await session.Query<AuditLink>().Where(l => l.Id > cursor).OrderBy(l => l.Id).Take(BatchSize).ToListAsync(ct);
            if (links.Count == 0) break;
            var rows = await EventRows.ReadAsync(session, cursor, links[^1].Id, ct);

            int i = 0, j = 0;
            while (i < rows.Count || j < links.Count)
            {
                if (j >= links.Count || (i < rows.Count && rows[i].Sequence < links[j].Id))
                    return await BrokenAsync(rows[i].Sequence, $"Event {rows[i].Sequence} is not in the chain: its row was inserted after the chain had passed it.");
                if (i >= rows.Count || links[j].Id < rows[i].Sequence)
                    return await BrokenAsync(links[j].Id, $"Event {links[j].Id} is chained but missing from the event log: its row was deleted.");

                var (row, link) = (rows[i], links[j]);
                if (!string.Equals(link.PreviousHash, previous, StringComparison.Ordinal))
                    return await BrokenAsync(row.Sequence, $"The link of event {row.Sequence} does not follow the link before it: the stored chain was edited.");
                var hash = AuditChain.Link(previous, row);
                if (!string.Equals(link.Hash, hash, StringComparison.Ordinal))
                    return await BrokenAsync(row.Sequence, $"Event {row.Sequence} does not match its link: its data or metadata was edited (or its link was).");

                previous = hash;
                verified++;
                i++;
                j++;
            }
            cursor = links[^1].Id;
        }
        return new AuditVerification(verified, true, null, null, cursor, await CountAfterAsync(cursor, ct), verified == 0 ? checkpoint?.Hash : previous);

        async Task<AuditVerification> BrokenAsync(long sequence, string reason) =>
            new(verified, false, sequence, reason, await LastLinkAsync(ct), 0, null);
    }

    private async Task<long> LastLinkAsync(CancellationToken ct) =>
        (await session.Query<AuditLink>().OrderByDescending(l => l.Id).FirstOrDefaultAsync(ct))?.Id ?? 0;

    private async Task<long> CountAfterAsync(long sequence, CancellationToken ct)
    {
        await using var connection = session.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"""SELECT count(*) FROM "{session.Schema()}".mt_events WHERE seq_id > @after""", connection);
        command.Parameters.AddWithValue("after", sequence);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
