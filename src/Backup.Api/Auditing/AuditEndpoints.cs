using System.Globalization;
using System.Text;
using Backup.Api.Infrastructure;
using Backup.Projections.Auditing;
using Backup.Storage.Vault;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Auditing;

public static class AuditEndpoints
{
    public static IEndpointRouteBuilder MapAudit(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/api/audit").WithTags("Audit").RequireAuthorization(AccessPolicies.Audit);
        audit.MapGet("/verify", Verify)
            .WithSummary("Prove the event log was not edited")
            .WithDescription("Recomputes the hash chain over the stored events (from the first, or from sequence 'from' trusting the stored link before it) " +
                             "and reports the first broken link: an edited event or link, a deleted event, or an event inserted behind the chain. " +
                             "Events newer than the chain are 'pending' until the daemon links them. The chain is also compared with the heads the workers " +
                             "anchor in the vault (never overwritten), which catches a history rewritten and re-chained inside the database.");
        audit.MapGet("/events", List)
            .WithSummary("The audit trail: every event with actor, correlation and causation")
            .WithDescription("Filter by streamId, eventType (alias, e.g. recovery_point_created.v1), actor and time range [from, to); " +
                             "sequence order; page with after=<nextAfter of the previous page>, limit 1–500 (default 100). " +
                             "format=csv exports every matching event as CSV (limit is the page size used to read them).")
            .Produces<AuditPage>(StatusCodes.Status200OK, "application/json", "text/csv");
        return app;
    }

    private static async Task<Ok<AuditVerification>> Verify(long? from, IMediator m, IQuerySession session, VaultStore vault, CancellationToken ct)
    {
        var result = await m.Send(new VerifyAuditChain(from), ct);
        if (!result.Intact) return TypedResults.Ok(result);
        // The chain holds together; now hold it against the heads anchored outside the database. A chain rewritten from an
        // edited event onwards, every link recomputed, is self-consistent but differs from what was anchored before.
        var anchors = await vault.AuditAnchorsAsync(ct);
        foreach (var anchor in anchors)
        {
            var link = await session.LoadAsync<AuditLink>(anchor.Sequence, ct);
            if (link is null)
                return TypedResults.Ok(result with { Intact = false, FirstBrokenSequence = anchor.Sequence, HeadHash = null, AnchorsChecked = anchors.IndexOf(anchor) + 1,
                    Reason = $"Event {anchor.Sequence} was anchored in the vault at {anchor.AnchoredAt:O} but is no longer in the chain: events or links were removed." });
            if (!string.Equals(link.Hash, anchor.Hash, StringComparison.Ordinal))
                return TypedResults.Ok(result with { Intact = false, FirstBrokenSequence = anchor.Sequence, HeadHash = null, AnchorsChecked = anchors.IndexOf(anchor) + 1,
                    Reason = $"The chain at event {anchor.Sequence} differs from the head anchored in the vault at {anchor.AnchoredAt:O}: the history up to it was rewritten and re-chained." });
        }
        return TypedResults.Ok(result with { AnchorsChecked = anchors.Count });
    }

    private static async Task<Results<Ok<AuditPage>, PushStreamHttpResult, ValidationProblem>> List(
        Guid? streamId, string? eventType, string? actor, DateTimeOffset? from, DateTimeOffset? to, long? after, int? limit, string? format,
        IMediator m, CancellationToken ct)
    {
        var query = new ListAuditEvents(streamId, eventType, actor, from, to, after, limit ?? 100);
        switch (format?.ToLowerInvariant())
        {
            case null or "" or "json":
                return TypedResults.Ok(await m.Send(query, ct));
            case "csv":
                // Validate before the response starts: a bad filter must still be a 400, not a truncated 200.
                var first = await m.Send(query, ct);
                return TypedResults.Stream(stream => WriteCsvAsync(stream, first, query, m, ct), "text/csv", "audit-events.csv");
            default:
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["format"] = ["'format' must be json or csv."] });
        }
    }

    private static async Task WriteCsvAsync(Stream body, AuditPage first, ListAuditEvents query, IMediator m, CancellationToken ct)
    {
        await using var writer = new StreamWriter(body, new UTF8Encoding(false));
        await writer.WriteLineAsync("sequence,eventId,streamId,version,eventType,timestamp,actor,correlationId,causationId");
        for (var page = first; ; page = await m.Send(query with { After = page.NextAfter }, ct))
        {
            foreach (var e in page.Items)
                await writer.WriteLineAsync(string.Join(',',
                    e.Sequence.ToString(CultureInfo.InvariantCulture), e.EventId.ToString(), e.StreamId.ToString(),
                    e.Version.ToString(CultureInfo.InvariantCulture), Csv(e.EventType),
                    e.Timestamp.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
                    Csv(e.Actor), Csv(e.CorrelationId), Csv(e.CausationId)));
            if (page.NextAfter is null) break;
        }
    }

    /// <summary>RFC 4180 quoting, and a leading quote for values a spreadsheet would run as a formula.</summary>
    private static string Csv(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value[0] is '=' or '+' or '-' or '@') value = "'" + value;
        return value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }
}
