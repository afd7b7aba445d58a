using Backup.Commands.Scheduling;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Projections.Compliance;

/// <summary>One data source over a period: scheduled recovery points against those created, and the days a copy was damaged.</summary>
/// <param name="Missed">The scheduled instants no recovery point answered (the first <see cref="CompliancePeriod.MaxListed"/>).</param>
/// <param name="InconsistentDates">UTC dates on which a consistency check had found a copy damaged and it was not yet sound again or expired.</param>
public sealed record DataSourcePeriod(
    Guid DataSourceId, Guid GroupId, string Path, int ExpectedRecoveryPoints, int RecoveryPointsCreated, int MissedRecoveryPoints,
    IReadOnlyList<DateTimeOffset> Missed, int InconsistentDays, IReadOnlyList<DateOnly> InconsistentDates);

/// <summary>A change of the facts within the period (protection, policy, a check or an expiry), from the compliance projection.</summary>
public readonly record struct FactsChange(DateTimeOffset At, ComplianceFacts Facts);

/// <summary>
/// Missed points and inconsistent days of one data source in [from, to), from the facts valid at <c>from</c> and their changes
/// within the period. Pure. A scheduled recovery point (<see cref="ShortTermCalendar"/> of the policy in force at that instant,
/// not before protection or the policy) counts as taken when a recovery point was created from it until the next scheduled one
/// (or the end of the period); one due less than <see cref="ComplianceEvaluation.JobAllowance"/> before the end is not counted yet.
/// </summary>
public static class CompliancePeriod
{
    public const int MaxListed = 100;

    public static DataSourcePeriod Evaluate(
        ComplianceFacts? atStart, IReadOnlyList<FactsChange> changes, IReadOnlyList<DateTimeOffset> created, DateTimeOffset from, DateTimeOffset to)
    {
        var timeline = new List<FactsChange>();
        if (atStart is not null) timeline.Add(new FactsChange(from, atStart));
        timeline.AddRange(changes.Where(c => c.At >= from && c.At < to).OrderBy(c => c.At));
        var identity = timeline.Count > 0 ? timeline[^1].Facts : new ComplianceFacts();

        // Scheduled instants, each under the policy in force when it fell due; the last one's window ends at the next one of the
        // schedule (or the end of the period), so a point taken for a later slot does not answer it.
        var slots = new List<DateTimeOffset>();
        var countUntil = to - ComplianceEvaluation.JobAllowance;
        for (var i = 0; i < timeline.Count; i++)
        {
            var (start, facts) = timeline[i];
            var end = i + 1 < timeline.Count ? timeline[i + 1].At : to;
            if (facts.ShortTerm is not { } policy) continue;
            var since = new[] { start, facts.ProtectedAt, facts.ShortTermSetAt ?? facts.ProtectedAt }.Max();
            foreach (var due in ShortTermCalendar.RecoveryPoints(policy, since.AddTicks(-1)))
            {
                if (due >= end) break;
                slots.Add(due);
            }
        }
        var points = created.Where(c => c >= from && c < to).Order().ToList();
        var missed = new List<DateTimeOffset>();
        var counted = slots.Count(s => s <= countUntil);
        for (var i = 0; i < counted; i++)
        {
            var windowEnd = i + 1 < slots.Count ? slots[i + 1] : to;
            var slot = slots[i];
            var first = points.BinarySearch(slot);
            if (first < 0) first = ~first;
            else while (first > 0 && points[first - 1] == slot) first--;
            if (first == points.Count || points[first] >= windowEnd) missed.Add(slot);
        }

        var dates = new SortedSet<DateOnly>();
        for (var i = 0; i < timeline.Count; i++)
        {
            if (timeline[i].Facts.Damaged.Count == 0) continue;
            var start = timeline[i].At;
            var end = i + 1 < timeline.Count ? timeline[i + 1].At : to;
            if (end <= start) continue;
            for (var day = DateOnly.FromDateTime(start.UtcDateTime); day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc) < end; day = day.AddDays(1))
                dates.Add(day);
        }

        return new DataSourcePeriod(
            identity.DataSourceId, identity.GroupId, identity.Path, counted, points.Count, missed.Count,
            [.. missed.Take(MaxListed)], dates.Count, [.. dates.Take(MaxListed)]);
    }
}

/// <summary>Totals of a period report: scheduled, created and missed recovery points, and data-source days with a damaged copy.</summary>
public sealed record PeriodTotals(int DataSources, int ExpectedRecoveryPoints, int MissedRecoveryPoints, int InconsistentDays, int DataSourcesWithMisses);

public sealed record CompliancePeriodReport(DateTimeOffset From, DateTimeOffset To, PeriodTotals Overall, IReadOnlyList<DataSourcePeriod> DataSources);

/// <summary>Missed recovery points and inconsistent days in [<paramref name="From"/>, <paramref name="To"/>) (to: now when left out), of every data source, a group or one.</summary>
public sealed record GetCompliancePeriod(DateTimeOffset? From, DateTimeOffset? To = null, Guid? GroupId = null, Guid? DataSourceId = null) : IQuery<CompliancePeriodReport>;

public sealed class GetCompliancePeriodValidator : AbstractValidator<GetCompliancePeriod>
{
    public static readonly TimeSpan MaxPeriod = TimeSpan.FromDays(366);

    public GetCompliancePeriodValidator(TimeProvider clock)
    {
        RuleFor(x => x.From).NotNull().WithMessage("'from' is required: the start of the period (ISO 8601).");
        RuleFor(x => x.To).Must(to => to is not { } t || t <= clock.GetUtcNow())
            .WithMessage("'to' is in the future: a period report covers the past.");
        RuleFor(x => x.To).Must((q, to) => (to ?? clock.GetUtcNow()) > q.From)
            .When(x => x.From is not null).WithMessage("'to' must be later than 'from'.");
        RuleFor(x => x.To).Must((q, to) => (to ?? clock.GetUtcNow()) - q.From <= MaxPeriod)
            .When(x => x.From is not null).WithMessage($"A period report covers at most {MaxPeriod.Days} days.");
    }
}

public sealed class GetCompliancePeriodHandler(IQuerySession session, TimeProvider clock) : IQueryHandler<GetCompliancePeriod, CompliancePeriodReport>
{
    public async ValueTask<CompliancePeriodReport> Handle(GetCompliancePeriod query, CancellationToken ct)
    {
        var from = query.From!.Value;
        var to = query.To ?? clock.GetUtcNow();
        var history = await ComplianceSnapshots.PeriodAsync(session, from, to, query.GroupId, query.DataSourceId, ct);
        var sources = history
            .Select(h => CompliancePeriod.Evaluate(h.AtStart, h.Changes, h.Created, from, to))
            .OrderBy(s => s.GroupId).ThenBy(s => s.Path, StringComparer.Ordinal).ThenBy(s => s.DataSourceId)
            .ToList();
        var totals = new PeriodTotals(
            sources.Count, sources.Sum(s => s.ExpectedRecoveryPoints), sources.Sum(s => s.MissedRecoveryPoints),
            sources.Sum(s => s.InconsistentDays), sources.Count(s => s.MissedRecoveryPoints > 0));
        return new CompliancePeriodReport(from, to, totals, sources);
    }
}
