using System.Text.Json;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Projections.Compliance;

/// <param name="PercentCompliant">Null when there is no data source to count.</param>
public sealed record ComplianceSummary(int DataSources, int Compliant, double? PercentCompliant)
{
    public static ComplianceSummary Of(IReadOnlyCollection<DataSourceCompliance> sources)
    {
        var compliant = sources.Count(s => s.Compliant);
        return new ComplianceSummary(sources.Count, compliant, sources.Count == 0 ? null : Math.Round(100.0 * compliant / sources.Count, 2));
    }
}

public sealed record GroupCompliance(Guid GroupId, int DataSources, int Compliant, double? PercentCompliant);

/// <summary>
/// Compliance at <see cref="AsOf"/>: overall and per protection group over every data source asked for, and one page of the data
/// sources (in group, path order; <see cref="Compliant"/> keeps only those that are, or are not, compliant) with the reasons each
/// falls short. <see cref="NextAfter"/> continues the list, null on its last page.
/// </summary>
public sealed record ComplianceReport(
    DateTimeOffset AsOf, ComplianceSummary Overall, IReadOnlyList<GroupCompliance> Groups, IReadOnlyList<DataSourceCompliance> DataSources,
    string? NextAfter);

/// <summary>
/// The compliance report now (<paramref name="AsOf"/> null: the server's clock) or as it stood at a past instant, from the
/// facts valid then; optionally of one group or one data source. A data source protected after the instant is not listed.
/// The summaries count every data source of the filter; <paramref name="Compliant"/>, <paramref name="After"/> and
/// <paramref name="Limit"/> page the list of data sources.
/// </summary>
public sealed record GetCompliance(
    DateTimeOffset? AsOf = null, Guid? GroupId = null, Guid? DataSourceId = null, bool? Compliant = null, string? After = null,
    int Limit = GetCompliance.DefaultLimit) : IQuery<ComplianceReport>
{
    public const int DefaultLimit = 100;
    public const int MaxLimit = 1_000;
}

public sealed class GetComplianceValidator : AbstractValidator<GetCompliance>
{
    public GetComplianceValidator(TimeProvider clock)
    {
        RuleFor(x => x.AsOf).Must(asOf => asOf is not { } at || at <= clock.GetUtcNow())
            .WithMessage("'asOf' is in the future: compliance is reported for now or a past instant.");
        RuleFor(x => x.Limit).InclusiveBetween(1, GetCompliance.MaxLimit);
        RuleFor(x => x.After).Must(a => a is null || ComplianceCursor.TryDecode(a, out _))
            .WithMessage("'after' is not a cursor this API returned.");
    }
}

/// <summary>Keyset cursor over the report's order (group, path, data source): stable while data sources are added.</summary>
public static class ComplianceCursor
{
    private const string Prefix = "compliance:";

    public static string Encode(DataSourceCompliance last) => Encode(last.GroupId, last.DataSourceId, last.Path);

    public static string Encode(Guid groupId, Guid dataSourceId, string path) => CursorText.Encode($"{Prefix}{groupId:N}{dataSourceId:N}{path}");

    public static bool TryDecode(string cursor, out (Guid GroupId, string Path, Guid DataSourceId) position)
    {
        position = default;
        if (!CursorText.TryDecode(cursor, Prefix, out var text) || text.Length < 64) return false;
        if (!Guid.TryParseExact(text.AsSpan(0, 32), "N", out var group) || !Guid.TryParseExact(text.AsSpan(32, 32), "N", out var dataSource)) return false;
        position = (group, text[64..], dataSource);
        return true;
    }

    /// <summary>Whether <paramref name="source"/> comes after the cursor's position in the report's order.</summary>
    public static bool IsAfter(DataSourceCompliance source, (Guid GroupId, string Path, Guid DataSourceId) position)
    {
        var byGroup = source.GroupId.CompareTo(position.GroupId);
        if (byGroup != 0) return byGroup > 0;
        var byPath = string.CompareOrdinal(source.Path, position.Path);
        return byPath != 0 ? byPath > 0 : source.DataSourceId.CompareTo(position.DataSourceId) > 0;
    }
}

public sealed class GetComplianceHandler(IQuerySession session, TimeProvider clock, ComplianceHeads heads) : IQueryHandler<GetCompliance, ComplianceReport>
{
    public async ValueTask<ComplianceReport> Handle(GetCompliance query, CancellationToken ct)
    {
        DateTimeOffset at;
        IEnumerable<ComplianceHeads.Evaluated> evaluated;
        if (query.AsOf is { } asOf)
        {
            at = asOf;
            var current = await heads.CurrentAsync(session, ct);
            Guid[] ids = [.. Wanted(current, query).Select(h => h.Id)];
            evaluated = ids.Length == 0 ? [] : await heads.AsOfAsync(session, current, ids, at, ct);
        }
        else
        {
            var now = await heads.NowAsync(session, clock.GetUtcNow(), ct);
            at = now.At;
            evaluated = now.Sorted;
            if (query.DataSourceId is { } ds) evaluated = evaluated.Where(e => e.Verdict.DataSourceId == ds);
            if (query.GroupId is { } group) evaluated = evaluated.Where(e => e.Verdict.GroupId == group);
        }
        // Every data source's verdict for the summaries; the reasons only for the page listed.
        var all = evaluated.ToList();
        var sources = all.Select(e => e.Verdict).ToList();
        var groups = sources.GroupBy(s => s.GroupId)
            .Select(g =>
            {
                var summary = ComplianceSummary.Of([.. g]);
                return new GroupCompliance(g.Key, summary.DataSources, summary.Compliant, summary.PercentCompliant);
            })
            .ToList();
        IEnumerable<ComplianceHeads.Evaluated> candidates = all;
        if (query.Compliant is { } compliant) candidates = candidates.Where(e => e.Verdict.Compliant == compliant);
        if (query.After is { } after && ComplianceCursor.TryDecode(after, out var position)) candidates = candidates.Where(e => ComplianceCursor.IsAfter(e.Verdict, position));
        var page = candidates.Take(query.Limit + 1).ToList();
        var next = page.Count > query.Limit ? ComplianceCursor.Encode(page[query.Limit - 1].Verdict) : null;
        var dueTimes = new DueTimes();
        var listed = page.Take(query.Limit).Select(e => ComplianceEvaluation.Evaluate(e.Facts, at, dueTimes)).ToList();
        return new ComplianceReport(at, ComplianceSummary.Of(sources), groups, listed, next);
    }

    private static IEnumerable<ComplianceSource> Wanted(IReadOnlyDictionary<Guid, ComplianceSource> current, GetCompliance query)
    {
        IEnumerable<ComplianceSource> wanted = query.DataSourceId is { } ds
            ? current.TryGetValue(ds, out var one) ? [one] : []
            : current.Values;
        return query.GroupId is { } group ? wanted.Where(h => h.GroupId == group) : wanted;
    }
}

/// <summary>Reads the temporal facts the <see cref="ComplianceProjection"/> appends.</summary>
public static class ComplianceSnapshots
{
    private static string Table(IQuerySession session) => $"{session.DocumentStore.Options.DatabaseSchemaName}.{ComplianceProjection.TableName}";

    private static async Task<Guid[]> CandidatesAsync(IQuerySession session, Guid? groupId, Guid? dataSourceId, CancellationToken ct)
    {
        var candidates = session.Query<ComplianceSource>().AsQueryable();
        if (groupId is { } group) candidates = candidates.Where(s => s.GroupId == group);
        if (dataSourceId is { } ds) candidates = candidates.Where(s => s.Id == ds);
        return [.. await candidates.Select(s => s.Id).ToListAsync(ct)];
    }

    /// <summary>For each data source (of the group, or the one asked for), the facts valid at <paramref name="at"/>: one index probe each.</summary>
    public static async Task<IReadOnlyList<ComplianceFacts>> ValidAtAsync(IQuerySession session, DateTimeOffset at, Guid? groupId, Guid? dataSourceId, CancellationToken ct)
    {
        var ids = await CandidatesAsync(session, groupId, dataSourceId, ct);
        return ids.Length == 0 ? [] : await ValidAtAsync(session, ids, at, ct);
    }

    /// <summary>For each of <paramref name="ids"/>, the facts valid at <paramref name="at"/> (none for one protected later).</summary>
    public static async Task<IReadOnlyList<ComplianceFacts>> ValidAtAsync(IQuerySession session, Guid[] ids, DateTimeOffset at, CancellationToken ct)
    {
        var rows = await session.AdvancedSql.QueryAsync<string>(ValidAtSql(session, "facts", "s.facts::text"), ct, ids, at.ToUniversalTime());
        return [.. rows.Select(r => JsonSerializer.Deserialize<ComplianceFacts>(r, ComplianceProjection.Json)!)];
    }

    /// <summary>
    /// The query for the row valid at an instant of each data source (parameters: the ids, the instant): one backward probe of the
    /// primary key each. <paramref name="columns"/> are what the probe reads of the row (<c>sequence</c> alone stays in the index),
    /// <paramref name="select"/> what each result row is, of <c>d.id</c> and <c>s.</c> those columns.
    /// </summary>
    internal static string ValidAtSql(IQuerySession session, string columns, string select) =>
        $"""
        select {select} from unnest(?) as d(id)
        cross join lateral (
            select {columns} from {Table(session)}
            where data_source_id = d.id and valid_from <= ?
            order by valid_from desc, sequence desc limit 1) s
        """;

    /// <summary>
    /// Per data source protected before <paramref name="to"/>: the facts at <paramref name="from"/>, the protection, policy and
    /// consistency changes in [from, to) (only the members the period report reads), and the creation stamps of its recovery points.
    /// </summary>
    public static async Task<IReadOnlyList<SourceHistory>> PeriodAsync(
        IQuerySession session, DateTimeOffset from, DateTimeOffset to, Guid? groupId, Guid? dataSourceId, CancellationToken ct)
    {
        var ids = await CandidatesAsync(session, groupId, dataSourceId, ct);
        if (ids.Length == 0) return [];
        var table = Table(session);
        var (start, end) = (from.ToUniversalTime(), to.ToUniversalTime());
        var atStart = (await ValidAtAsync(session, ids, from, ct)).ToDictionary(f => f.DataSourceId);
        // One jsonb text column per row: Marten's advanced SQL reads several scalar columns as nested rows.
        var changes = (await session.AdvancedSql.QueryAsync<string>(
            $"""
            select jsonb_build_object('dataSourceId', data_source_id, 'at', valid_from, 'facts', jsonb_build_object(
                'dataSourceId', facts->'dataSourceId', 'groupId', facts->'groupId', 'agentId', facts->'agentId', 'path', facts->'path',
                'protectedAt', facts->'protectedAt', 'shortTerm', facts->'shortTerm', 'shortTermSetAt', facts->'shortTermSetAt',
                'damaged', facts->'damaged'))::text
            from {table}
            where data_source_id = any(?) and valid_from >= ? and valid_from < ? and kind in ('protected', 'policy', 'consistency')
            order by data_source_id, valid_from, sequence
            """, ct, ids, start, end)).Select(r => JsonSerializer.Deserialize<Stamped>(r, ComplianceProjection.Json)!);
        var created = (await session.AdvancedSql.QueryAsync<string>(
            $"""
            select jsonb_build_object('dataSourceId', data_source_id, 'at', valid_from)::text
            from {table} where data_source_id = any(?) and valid_from >= ? and valid_from < ? and kind = 'created'
            """, ct, ids, start, end)).Select(r => JsonSerializer.Deserialize<Stamped>(r, ComplianceProjection.Json)!);
        var changesBySource = changes.ToLookup(c => c.DataSourceId, c => new FactsChange(c.At, c.Facts!));
        var createdBySource = created.ToLookup(c => c.DataSourceId, c => c.At);
        return [.. ids
            .Where(id => atStart.ContainsKey(id) || changesBySource.Contains(id))
            .Select(id => new SourceHistory(atStart.GetValueOrDefault(id), [.. changesBySource[id]], [.. createdBySource[id]]))];
    }
}

internal sealed record Stamped(Guid DataSourceId, DateTimeOffset At, ComplianceFacts? Facts);

/// <summary>What the period report needs of one data source: the facts at the start, their rare changes within, and when its points were created.</summary>
public sealed record SourceHistory(ComplianceFacts? AtStart, IReadOnlyList<FactsChange> Changes, IReadOnlyList<DateTimeOffset> Created);
