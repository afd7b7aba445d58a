using Backup.Commands.ProtectionGroups;
using Backup.Commands.Retention;

namespace Backup.UnitTests.Retention;

public sealed class RetentionRulesTests
{
    private static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Points named by their creation instant, so expectations read as dates.</summary>
    private static (List<RetainedPoint> Points, Func<IReadOnlyList<Guid>, string[]> Names) Points(params string[] created)
    {
        var points = created.Select(c => new RetainedPoint(Guid.NewGuid(), Utc(c))).ToList();
        var names = points.ToDictionary(p => p.Id, p => p.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm", System.Globalization.CultureInfo.InvariantCulture));
        return (points, ids => [.. ids.Select(id => names[id]).Order()]);
    }

    [Fact]
    public void On_disk_points_older_than_the_range_expire()
    {
        var (points, names) = Points("2026-03-01T20:00Z", "2026-03-03T20:00Z", "2026-03-04T20:00Z", "2026-03-05T20:00Z");

        names(RetentionRules.ExpiredOnDisk(points, retentionDays: 2, Utc("2026-03-05T21:00Z")))
            .ShouldBe(["2026-03-01T20:00", "2026-03-03T20:00"]);
        RetentionRules.ExpiredOnDisk(points, retentionDays: 448, Utc("2026-03-05T21:00Z")).ShouldBeEmpty();
    }

    [Fact]
    public void On_disk_at_most_the_cap_is_kept_the_oldest_go_first()
    {
        var start = Utc("2026-03-01T00:00Z");
        var points = Enumerable.Range(0, 70).Select(i => new RetainedPoint(Guid.NewGuid(), start.AddHours(i))).ToList();

        var expired = RetentionRules.ExpiredOnDisk(points, retentionDays: 448, start.AddDays(3));

        PolicyLimits.MaxRecoveryPointsOnDisk.ShouldBe(64);
        expired.ShouldBe(points.Take(6).Select(p => p.Id), ignoreOrder: true);
        RetentionRules.ExpiredOnDisk(points, 448, start.AddDays(3), cap: 10).ShouldBe(points.Take(60).Select(p => p.Id), ignoreOrder: true);
    }

    [Fact]
    public void Daily_keeps_every_point_of_the_last_days_in_the_groups_zone()
    {
        // Two a day. In Amsterdam (UTC+1) 23:30 UTC on 9 March is already 10 March.
        var (points, names) = Points("2026-03-08T08:00Z", "2026-03-08T20:00Z", "2026-03-09T08:00Z", "2026-03-09T23:30Z", "2026-03-10T08:00Z");
        var gfs = new GfsRetention(DailyDays: 2, null, null, null);

        names(RetentionRules.ExpiredInVault(points, gfs, "Europe/Amsterdam", Utc("2026-03-10T12:00Z")))
            .ShouldBe(["2026-03-08T08:00", "2026-03-08T20:00"]);
        names(RetentionRules.ExpiredInVault(points, gfs, "UTC", Utc("2026-03-10T12:00Z")))
            .ShouldBe(["2026-03-08T08:00", "2026-03-08T20:00"]);
        names(RetentionRules.ExpiredInVault(points, gfs, "UTC", Utc("2026-03-11T00:30Z")))
            .ShouldBe(["2026-03-08T08:00", "2026-03-08T20:00", "2026-03-09T08:00", "2026-03-09T23:30"]);
    }

    [Fact]
    public void Weekly_keeps_the_latest_point_of_each_iso_week_across_the_year_end()
    {
        // Monday 29 December 2025 to Sunday 4 January 2026 is one ISO week (2026-W01).
        var (points, names) = Points("2025-12-22T08:00Z", "2025-12-28T08:00Z", "2025-12-29T08:00Z", "2026-01-01T08:00Z", "2026-01-04T08:00Z", "2026-01-05T08:00Z");
        var gfs = new GfsRetention(null, WeeklyWeeks: 2, null, null);

        names(RetentionRules.ExpiredInVault(points, gfs, "UTC", Utc("2026-01-06T00:00Z")))
            .ShouldBe(["2025-12-22T08:00", "2025-12-28T08:00", "2025-12-29T08:00", "2026-01-01T08:00"]);
    }

    [Fact]
    public void Monthly_and_yearly_keep_the_latest_point_of_each_month_and_year_month_ends_included()
    {
        var (points, names) = Points(
            "2024-02-29T08:00Z", "2024-12-31T08:00Z", "2025-11-30T08:00Z", "2025-12-31T08:00Z", "2026-01-15T08:00Z", "2026-01-31T08:00Z", "2026-02-01T08:00Z");

        names(RetentionRules.ExpiredInVault(points, new GfsRetention(null, null, MonthlyMonths: 3, null), "UTC", Utc("2026-02-10T00:00Z")))
            .ShouldBe(["2024-02-29T08:00", "2024-12-31T08:00", "2025-11-30T08:00", "2026-01-15T08:00"]);
        names(RetentionRules.ExpiredInVault(points, new GfsRetention(null, null, null, YearlyYears: 2), "UTC", Utc("2026-02-10T00:00Z")))
            .ShouldBe(["2024-02-29T08:00", "2024-12-31T08:00", "2025-11-30T08:00", "2026-01-15T08:00", "2026-01-31T08:00"]);
        names(RetentionRules.ExpiredInVault(points, new GfsRetention(7, 4, 3, YearlyYears: 3), "UTC", Utc("2026-02-10T00:00Z")))
            .ShouldBe(["2024-02-29T08:00", "2025-11-30T08:00", "2026-01-15T08:00"]);
    }

    [Fact]
    public void Points_created_after_now_never_expire()
    {
        var (points, _) = Points("2026-03-20T08:00Z");

        RetentionRules.ExpiredInVault(points, new GfsRetention(7, null, null, null), "UTC", Utc("2026-03-10T00:00Z")).ShouldBeEmpty();
        RetentionRules.ExpiredOnDisk(points, 1, Utc("2026-03-10T00:00Z"), cap: 0).ShouldBeEmpty();
    }
}
