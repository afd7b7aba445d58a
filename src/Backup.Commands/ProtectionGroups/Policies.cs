namespace Backup.Commands.ProtectionGroups;

/// <summary>How often the replica on the server's disk is brought up to date with the protected data.</summary>
public enum SynchronisationMode
{
    /// <summary>Every <see cref="ShortTermPolicy.SyncIntervalMinutes"/> minutes of the local day (00:00, 00:15, …).</summary>
    Interval,

    /// <summary>Only right before each recovery point (one job: synchronise, then snapshot).</summary>
    JustBeforeRecoveryPoint,
}

public enum OnlineSchedule
{
    Daily,
    Weekly,
}

/// <summary>
/// Short-term protection on the backup server's disk. These records are part of published event shapes
/// (<see cref="ShortTermPolicySet"/>): never reshape them, add a new event instead.
/// </summary>
/// <param name="SyncIntervalMinutes">Set for <see cref="SynchronisationMode.Interval"/>, null otherwise.</param>
/// <param name="TimeZone">IANA id; recovery-point times, sync slots and online times are wall-clock times in it.</param>
public sealed record ShortTermPolicy(
    int RetentionDays,
    SynchronisationMode Synchronisation,
    int? SyncIntervalMinutes,
    IReadOnlyList<TimeOnly> RecoveryPointTimes,
    IReadOnlyList<DayOfWeek> RecoveryPointDays,
    string TimeZone);

/// <summary>Grandfather-father-son retention in the vault; a null tier is not kept.</summary>
public sealed record GfsRetention(int? DailyDays, int? WeeklyWeeks, int? MonthlyMonths, int? YearlyYears);

/// <param name="Days">The days of week for <see cref="OnlineSchedule.Weekly"/>; empty for daily.</param>
public sealed record OnlinePolicy(IReadOnlyList<TimeOnly> BackupTimes, OnlineSchedule Schedule, IReadOnlyList<DayOfWeek> Days, GfsRetention Retention);

/// <summary>Bandwidth for online transfers, in kilobits per second (1 Mbps = 1024 Kbps, as the MARS agent counts).</summary>
public sealed record OnlineThrottling(int WorkHoursKbps, int NonWorkHoursKbps, IReadOnlyList<DayOfWeek> WorkDays, TimeOnly WorkStart, TimeOnly WorkEnd);

/// <summary>The limits Azure Backup Server puts on policies; validators and the decider share them.</summary>
public static class PolicyLimits
{
    public const int MinRetentionDays = 1;
    public const int MaxRetentionDays = 448;
    public static readonly IReadOnlyList<int> SyncIntervalsMinutes = [15, 30, 45, 60, 120, 240, 360, 720, 1440];

    /// <summary>Shadow copies a file data source may keep on disk (448 days = 64 weekly points).</summary>
    public const int MaxRecoveryPointsOnDisk = 64;

    public const int MaxOnlineBackupsPerDay = 2;
    public const int MinDailyDays = 7, MaxDailyDays = 9_999;
    public const int MinWeeklyWeeks = 4, MaxWeeklyWeeks = 5_163;
    public const int MinMonthlyMonths = 3, MaxMonthlyMonths = 1_188;
    public const int MinYearlyYears = 1, MaxYearlyYears = 99;

    public const int MinKbps = 512;
    public const int MaxKbps = 1023 * 1024;

    public const int MinAlertDays = 1;
    public const int MaxAlertDays = 30;

    /// <summary>
    /// The most recovery points on disk at any moment: the busiest window of <paramref name="retentionDays"/>
    /// consecutive days, i.e. whole weeks times points per week plus the best run of the remaining days.
    /// </summary>
    public static int RecoveryPointsKept(int retentionDays, int timesPerDay, IReadOnlyCollection<DayOfWeek> days)
    {
        var distinctDays = days.Distinct().ToHashSet();
        var perWeek = timesPerDay * distinctDays.Count;
        var rest = retentionDays % 7;
        var bestRest = 0;
        for (var start = 0; start < 7 && rest > 0; start++)
            bestRest = Math.Max(bestRest, Enumerable.Range(start, rest).Count(d => distinctDays.Contains((DayOfWeek)(d % 7))) * timesPerDay);
        return retentionDays / 7 * perWeek + bestRest;
    }

    /// <summary>An IANA zone id this server knows; the path-like shape keeps the lookup inside the zone database.</summary>
    public static bool IsKnownTimeZone(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 64 || id.Contains("..", StringComparison.Ordinal) || id.StartsWith('/')) return false;
        if (!id.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '+')) return false;
        try
        {
            TimeZoneInfo.FindSystemTimeZoneById(id);
            return true;
        }
        catch (Exception e) when (e is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return false;
        }
    }
}
