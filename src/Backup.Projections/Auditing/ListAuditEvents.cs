using System.Text;
using FluentValidation;
using Marten;
using Mediator;
using Npgsql;

namespace Backup.Projections.Auditing;

/// <summary>
/// The audit trail: events in sequence order with who (the "actor" header), why (causation) and which request
/// (correlation). Time range is [From, To). Paged by sequence: pass the last page's <see cref="AuditPage.NextAfter"/>
/// as <see cref="After"/>.
/// </summary>
public sealed record ListAuditEvents(
    Guid? StreamId, string? EventType, string? Actor, DateTimeOffset? From, DateTimeOffset? To, long? After, int Limit)
    : IQuery<AuditPage>;

public sealed record AuditEntry(
    long Sequence, Guid EventId, Guid StreamId, long Version, string EventType, DateTimeOffset Timestamp,
    string? Actor, string? CorrelationId, string? CausationId);

/// <param name="NextAfter">The cursor for the next page; null when this page is the last.</param>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Items, long? NextAfter);

public sealed class ListAuditEventsValidator : AbstractValidator<ListAuditEvents>
{
    public const int MaxLimit = 500;

    public ListAuditEventsValidator()
    {
        RuleFor(x => x.Limit).InclusiveBetween(1, MaxLimit);
        RuleFor(x => x.After).GreaterThanOrEqualTo(0);
        RuleFor(x => x.To)
            .Must((q, to) => to >= q.From)
            .When(q => q.From is not null && q.To is not null)
            .WithMessage("'to' must not be before 'from'.");
    }
}

public sealed class ListAuditEventsHandler(IQuerySession session) : IQueryHandler<ListAuditEvents, AuditPage>
{
    public async ValueTask<AuditPage> Handle(ListAuditEvents query, CancellationToken ct)
    {
        await using var connection = session.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand { Connection = connection };
        var where = new StringBuilder("seq_id > @after");
        command.Parameters.AddWithValue("after", query.After ?? 0);
        if (query.StreamId is { } stream)
        {
            where.Append(" AND stream_id = @stream");
            command.Parameters.AddWithValue("stream", stream);
        }
        if (query.EventType is { } type)
        {
            where.Append(" AND type = @type");
            command.Parameters.AddWithValue("type", type);
        }
        if (query.Actor is { } actor)
        {
            where.Append(" AND headers ->> 'actor' = @actor");
            command.Parameters.AddWithValue("actor", actor);
        }
        if (query.From is { } from)
        {
            where.Append(" AND timestamp >= @from");
            command.Parameters.AddWithValue("from", from.UtcDateTime);
        }
        if (query.To is { } to)
        {
            where.Append(" AND timestamp < @to");
            command.Parameters.AddWithValue("to", to.UtcDateTime);
        }
        command.Parameters.AddWithValue("limit", query.Limit);
        command.CommandText =
            $"""
            SELECT seq_id, id, stream_id, version, type, timestamp, headers ->> 'actor', correlation_id, causation_id
            FROM "{session.Schema()}".mt_events
            WHERE {where}
            ORDER BY seq_id
            LIMIT @limit
            """;

        var items = new List<AuditEntry>();
        await using var r = await command.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            items.Add(new AuditEntry(
                r.GetInt64(0), r.GetGuid(1), r.GetGuid(2), r.GetInt64(3), r.GetString(4),
                new DateTimeOffset(r.GetFieldValue<DateTime>(5), TimeSpan.Zero),
                r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7), r.IsDBNull(8) ? null : r.GetString(8)));
        return new AuditPage(items, items.Count == query.Limit ? items[^1].Sequence : null);
    }
}
