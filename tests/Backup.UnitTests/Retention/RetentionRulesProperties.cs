using Backup.Commands.ProtectionGroups;
using Backup.Commands.Retention;
using FsCheck.Xunit;

namespace Backup.UnitTests.Retention;

/// <summary>Retention decisions on random histories: what they keep, what they never expire, and that longer ranges keep more.</summary>
public sealed class RetentionRulesProperties
{
    private static readonly DateTimeOffset Now = new(2027, 6, 15, 12, 0, 0, TimeSpan.Zero);
    private static readonly string[] Zones = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"];

    /// <summary>Points up to about three years back, at random minutes.</summary>
    private static List<RetainedPoint> History(int[] minutesBack) =>
        [.. minutesBack.Distinct().Select(m => new RetainedPoint(Guid.NewGuid(), Now.AddMinutes(-(Math.Abs((long)m) % (3L * 366 * 1440)))))];

    private static GfsRetention Gfs(byte days, byte weeks, byte months, byte years, byte mask)
    {
        var gfs = new GfsRetention(
            (mask & 1) != 0 ? 1 + days % 60 : null, (mask & 2) != 0 ? 1 + weeks % 30 : null,
            (mask & 4) != 0 ? 1 + months % 24 : null, (mask & 8) != 0 ? 1 + years % 5 : null);
        return gfs is { DailyDays: null, WeeklyWeeks: null, MonthlyMonths: null, YearlyYears: null } ? gfs with { DailyDays = 7 } : gfs;
    }

    [Property(MaxTest = 200)]
    public void Disk_keeps_at_most_the_cap_and_nothing_older_than_the_range(int[] minutesBack, byte days)
    {
        var points = History(minutesBack);
        var retention = 1 + days % 60;
        var expired = RetentionRules.ExpiredOnDisk(points, retention, Now).ToHashSet();
        var kept = points.Where(p => !expired.Contains(p.Id)).ToList();

        expired.ShouldBeSubsetOf(points.Select(p => p.Id));
        kept.Count.ShouldBeLessThanOrEqualTo(PolicyLimits.MaxRecoveryPointsOnDisk);
        kept.ShouldAllBe(p => p.CreatedAt >= Now - TimeSpan.FromDays(retention));
        // Nothing kept is older than something expired for the cap: the newest survive.
        if (kept.Count > 0) points.Where(p => expired.Contains(p.Id)).ShouldAllBe(p => p.CreatedAt <= kept.Min(k => k.CreatedAt));
    }

    [Property(MaxTest = 200)]
    public void Gfs_keeps_the_newest_point_of_today_and_longer_ranges_never_expire_more(
        int[] minutesBack, byte days, byte weeks, byte months, byte years, byte mask, int zone)
    {
        var points = History(minutesBack);
        var tz = Zones[Math.Abs(zone % Zones.Length)];
        var gfs = Gfs(days, weeks, months, years, mask);
        var expired = RetentionRules.ExpiredInVault(points, gfs, tz, Now).ToHashSet();

        expired.ShouldBeSubsetOf(points.Select(p => p.Id));
        // Every tier keeps the latest point of its current period, so the newest point, when it is from today, is kept.
        var zoneInfo = TimeZoneInfo.FindSystemTimeZoneById(tz);
        var newest = points.Count > 0 ? points.MaxBy(p => (p.CreatedAt, p.Id)) : (RetainedPoint?)null;
        if (newest is { } n && TimeZoneInfo.ConvertTime(n.CreatedAt, zoneInfo).Date == TimeZoneInfo.ConvertTime(Now, zoneInfo).Date)
            expired.ShouldNotContain(n.Id);

        var longer = new GfsRetention(gfs.DailyDays + 5, gfs.WeeklyWeeks + 2, gfs.MonthlyMonths + 2, gfs.YearlyYears + 1);
        RetentionRules.ExpiredInVault(points, longer, tz, Now).ShouldBeSubsetOf(expired);
    }

    [Property(MaxTest = 200)]
    public void Each_monthly_period_in_range_keeps_exactly_one_point(int[] minutesBack, byte months)
    {
        var points = History(minutesBack);
        var gfs = new GfsRetention(null, null, 1 + months % 24, null);
        var expired = RetentionRules.ExpiredInVault(points, gfs, "UTC", Now).ToHashSet();
        var kept = points.Where(p => !expired.Contains(p.Id)).ToList();

        kept.GroupBy(p => (p.CreatedAt.Year, p.CreatedAt.Month)).ShouldAllBe(g => g.Count() == 1);
        var monthsWithPoints = points.Select(p => p.CreatedAt.Year * 12 + p.CreatedAt.Month - 1)
            .Where(m => Now.Year * 12 + Now.Month - 1 - m < gfs.MonthlyMonths).Distinct().Count();
        kept.Count.ShouldBe(monthsWithPoints);
    }
}
