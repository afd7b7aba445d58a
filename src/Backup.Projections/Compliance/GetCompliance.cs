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

/// <summary>Compliance at <see cref="AsOf"/>: overall, per protection group and per data source with the reasons it falls short.</summary>
public sealed record ComplianceReport(DateTimeOffset AsOf, ComplianceSummary Overall, IReadOnlyList<GroupCompliance> Groups, IReadOnlyList<DataSourceCompliance> DataSources);

/// <summary>
/// The compliance report now (<paramref name="AsOf"/> null: the server's clock) or as it stood at a past instant, from the
/// facts valid then; optionally of one group or one data source. A data source protected after the instant is not listed.
/// </summary>
public sealed record GetCompliance(DateTimeOffset? AsOf = null, Guid? GroupId = null, Guid? DataSourceId = null) : IQuery<ComplianceReport>;

public sealed class GetComplianceValidator : AbstractValidator<GetCompliance>
{
    public GetComplianceValidator(TimeProvider clock) =>
        RuleFor(x => x.AsOf).Must(asOf => asOf is not { } at || at <= clock.GetUtcNow())
            .WithMessage("'asOf' is in the future: compliance is reported for now or a past instant.");
}

public sealed class GetComplianceHandler(IQuerySession session, TimeProvider clock) : IQueryHandler<GetCompliance, ComplianceReport>
{
    public async ValueTask<ComplianceReport> Handle(GetCompliance query, CancellationToken ct)
    {
        var at = query.AsOf ?? clock.GetUtcNow();
        var facts = await ComplianceSnapshots.ValidAtAsync(session, at, query.GroupId, query.DataSourceId, ct);
        var dueTimes = new DueTimes();
        var sources = facts.Select(f => ComplianceEvaluation.Evaluate(f, at, dueTimes))
            .OrderBy(s => s.GroupId).ThenBy(s => s.Path, StringComparer.Ordinal).ThenBy(s => s.DataSourceId)
            .ToList();
        var groups = sources.GroupBy(s => s.GroupId)
            .Select(g =>
            {
                var summary = ComplianceSummary.Of([.. g]);
                return new GroupCompliance(g.Key, summary.DataSources, summary.Compliant, summary.PercentCompliant);
            })
            .ToList();
        return new ComplianceReport(at, ComplianceSummary.Of(sources), groups, sources);
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

    private static async Task<IReadOnlyList<ComplianceFacts>> ValidAtAsync(IQuerySession session, Guid[] ids, DateTimeOffset at, CancellationToken ct)
    {
        var table = Table(session);
        var rows = await session.AdvancedSql.QueryAsync<string>(
            $"""
            select s.facts::text from unnest(?) as d(id)
            cross join lateral (
                select facts from {table}
                where data_source_id = d.id and valid_from <= ?
                order by valid_from desc, sequence desc limit 1) s
            """, ct, ids, at.ToUniversalTime());
        return [.. rows.Select(r => JsonSerializer.Deserialize<ComplianceFacts>(r, ComplianceProjection.Json)!)];
    }

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
