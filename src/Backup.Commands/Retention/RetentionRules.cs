using Backup.Commands.ProtectionGroups;

namespace Backup.Commands.Retention;

/// <summary>A recovery point as retention sees it: which one, and when it was created.</summary>
public readonly record struct RetainedPoint(Guid Id, DateTimeOffset CreatedAt);

/// <summary>
/// Which recovery points a policy no longer keeps at an instant. Pure: the retention worker passes its clock's "now".
/// Points created after "now" are never expired.
/// </summary>
public static class RetentionRules
{
    /// <summary>
    /// Short-term, on the server's disk: a point older than the retention range, or beyond the newest
    /// <paramref name="cap"/> (64 for a file data source), is expired.
    /// </summary>
    public static IReadOnlyList<Guid> ExpiredOnDisk(
        IEnumerable<RetainedPoint> onDisk, int retentionDays, DateTimeOffset now, int cap = PolicyLimits.MaxRecoveryPointsOnDisk)
    {
        var cutoff = now - TimeSpan.FromDays(retentionDays);
        return [.. onDisk
            .Where(p => p.CreatedAt <= now)
            .OrderByDescending(p => p.CreatedAt).ThenByDescending(p => p.Id)
            .Where((p, newer) => p.CreatedAt < cutoff || newer >= cap)
            .Select(p => p.Id)];
    }

    /// <summary>
    /// Grandfather-father-son in the vault, with periods in the group's time zone. A point is kept when any tier keeps it:
    /// <list type="bullet">
    /// <item>daily: every point of the last <c>DailyDays</c> local days (today is the first);</item>
    /// <item>weekly: the latest point of each of the last <c>WeeklyWeeks</c> ISO weeks (Monday to Sunday, this week first);</item>
    /// <item>monthly: the latest point of each of the last <c>MonthlyMonths</c> calendar months;</item>
    /// <item>yearly: the latest point of each of the last <c>YearlyYears</c> calendar years.</item>
    /// </list>
    /// The rest is expired. The latest point of the current week, month or year may change while the period runs, so the point it
    /// replaces expires then (unless a daily range still holds it), as in every GFS scheme.
    /// </summary>
    public static IReadOnlyList<Guid> ExpiredInVault(IEnumerable<RetainedPoint> inVault, GfsRetention gfs, string timeZone, DateTimeOffset now)
    {
        var zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        var points = inVault.Where(p => p.CreatedAt <= now)
            .Select(p => (Point: p, Date: DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(p.CreatedAt, zone).DateTime)))
            .ToList();
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime);
        var kept = new HashSet<Guid>();

        if (gfs.DailyDays is { } days)
            kept.UnionWith(points.Where(p => today.DayNumber - p.Date.DayNumber < days).Select(p => p.Point.Id));
        if (gfs.WeeklyWeeks is { } weeks)
            KeepLatestPerPeriod(points, kept, d => WeekIndex(d), WeekIndex(today), weeks);
        if (gfs.MonthlyMonths is { } months)
            KeepLatestPerPeriod(points, kept, d => d.Year * 12 + d.Month - 1, today.Year * 12 + today.Month - 1, months);
        if (gfs.YearlyYears is { } years)
            KeepLatestPerPeriod(points, kept, d => d.Year, today.Year, years);

        return [.. points.Where(p => !kept.Contains(p.Point.Id)).OrderBy(p => p.Point.CreatedAt).Select(p => p.Point.Id)];
    }

    /// <summary>Keeps the latest point of each period whose index is among the last <paramref name="count"/> up to <paramref name="current"/>.</summary>
    private static void KeepLatestPerPeriod(
        List<(RetainedPoint Point, DateOnly Date)> points, HashSet<Guid> kept, Func<DateOnly, int> period, int current, int count)
    {
        foreach (var group in points.GroupBy(p => period(p.Date)).Where(g => current - g.Key < count))
            kept.Add(group.MaxBy(p => (p.Point.CreatedAt, p.Point.Id)).Point.Id);
    }

    /// <summary>Weeks since an epoch Monday, so consecutive ISO weeks differ by one across year ends.</summary>
    private static int WeekIndex(DateOnly date)
    {
        var monday = date.AddDays(-(((int)date.DayOfWeek + 6) % 7));
        return monday.DayNumber / 7;
    }
}
