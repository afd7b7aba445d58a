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
        var sources = facts.Select(f => ComplianceEvaluation.Evaluate(f, at))
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
    /// <summary>For each data source (of the group, or the one asked for), the facts valid at <paramref name="at"/>: one index probe each.</summary>
    public static async Task<IReadOnlyList<ComplianceFacts>> ValidAtAsync(IQuerySession session, DateTimeOffset at, Guid? groupId, Guid? dataSourceId, CancellationToken ct)
    {
        var candidates = session.Query<ComplianceSource>().AsQueryable();
        if (groupId is { } group) candidates = candidates.Where(s => s.GroupId == group);
        if (dataSourceId is { } ds) candidates = candidates.Where(s => s.Id == ds);
        var ids = (await candidates.Select(s => s.Id).ToListAsync(ct)).ToArray();
        if (ids.Length == 0) return [];
        var table = $"{session.DocumentStore.Options.DatabaseSchemaName}.{ComplianceProjection.TableName}";
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
}
