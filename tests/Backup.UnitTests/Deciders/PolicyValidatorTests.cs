using Backup.Commands.ProtectionGroups;
using FluentValidation.Results;

namespace Backup.UnitTests.Deciders;

/// <summary>Every range boundary of every policy, just inside and just outside.</summary>
public sealed class PolicyValidatorTests
{
    private static readonly Guid GroupId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000b1");
    private static readonly DayOfWeek[] EveryDay = Enum.GetValues<DayOfWeek>();

    private static void ShouldFailOn(ValidationResult result, string property)
    {
        result.IsValid.ShouldBeFalse();
        result.Errors.Select(e => e.PropertyName).ShouldContain(property, string.Join("; ", result.Errors));
    }

    private static void ShouldPass(ValidationResult result) => result.IsValid.ShouldBeTrue(string.Join("; ", result.Errors));

    // ---- short-term ----

    private static SetShortTermPolicy ShortTerm(
        int? retentionDays = 5, SynchronisationMode? mode = SynchronisationMode.Interval, int? minutes = 15,
        TimeOnly[]? times = null, DayOfWeek[]? days = null, string? zone = "Europe/London", long? expectedVersion = 1) =>
        new(GroupId, expectedVersion, retentionDays, mode, minutes, times ?? [new(8, 0), new(20, 0)], days ?? EveryDay, zone);

    private static ValidationResult Validate(SetShortTermPolicy c) => new SetShortTermPolicyValidator().Validate(c);

    [Fact]
    public void A_typical_short_term_policy_passes() => ShouldPass(Validate(ShortTerm()));

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(448, true)]
    [InlineData(449, false)]
    public void Retention_is_1_to_448_days(int days, bool valid)
    {
        // One point a week keeps the 64-point limit out of the way (448 days = 64 weeks).
        var result = Validate(ShortTerm(retentionDays: days, times: [new(8, 0)], days: [DayOfWeek.Sunday]));
        if (valid) ShouldPass(result);
        else ShouldFailOn(result, nameof(SetShortTermPolicy.RetentionDays));
    }

    [Fact]
    public void Retention_is_required() => ShouldFailOn(Validate(ShortTerm(retentionDays: null)), nameof(SetShortTermPolicy.RetentionDays));

    [Theory]
    [InlineData(15)]
    [InlineData(30)]
    [InlineData(45)]
    [InlineData(60)]
    [InlineData(120)]
    [InlineData(240)]
    [InlineData(360)]
    [InlineData(720)]
    [InlineData(1440)]
    public void Every_listed_sync_interval_passes(int minutes) => ShouldPass(Validate(ShortTerm(minutes: minutes)));

    [Theory]
    [InlineData(0)]
    [InlineData(-15)]
    [InlineData(14)]
    [InlineData(16)]
    [InlineData(90)]
    [InlineData(1439)]
    [InlineData(1441)]
    public void Other_sync_intervals_fail(int minutes) =>
        ShouldFailOn(Validate(ShortTerm(minutes: minutes)), nameof(SetShortTermPolicy.SyncIntervalMinutes));

    [Fact]
    public void Interval_sync_needs_an_interval_and_just_before_needs_none()
    {
        ShouldFailOn(Validate(ShortTerm(minutes: null)), nameof(SetShortTermPolicy.SyncIntervalMinutes));
        ShouldPass(Validate(ShortTerm(mode: SynchronisationMode.JustBeforeRecoveryPoint, minutes: null)));
        ShouldFailOn(Validate(ShortTerm(mode: SynchronisationMode.JustBeforeRecoveryPoint, minutes: 15)), nameof(SetShortTermPolicy.SyncIntervalMinutes));
    }

    [Fact]
    public void Sync_mode_must_be_known()
    {
        ShouldFailOn(Validate(ShortTerm(mode: null)), nameof(SetShortTermPolicy.Synchronisation));
        ShouldFailOn(Validate(ShortTerm(mode: (SynchronisationMode)7)), nameof(SetShortTermPolicy.Synchronisation));
    }

    [Fact]
    public void Recovery_point_times_are_at_least_one_distinct_whole_minute()
    {
        ShouldFailOn(Validate(ShortTerm(times: [])), nameof(SetShortTermPolicy.RecoveryPointTimes));
        ShouldFailOn(Validate(ShortTerm(times: [new(8, 0), new(12, 0), new(8, 0)])), nameof(SetShortTermPolicy.RecoveryPointTimes));
        ShouldFailOn(Validate(ShortTerm(times: [new(8, 0), new(12, 0, 30)])), "RecoveryPointTimes[1]");
        ShouldPass(Validate(ShortTerm(times: [new(0, 0)])));
        ShouldPass(Validate(ShortTerm(times: [new(23, 59)])));
    }

    [Fact]
    public void Recovery_point_days_are_at_least_one_distinct_known_day()
    {
        ShouldFailOn(Validate(ShortTerm(days: [])), nameof(SetShortTermPolicy.RecoveryPointDays));
        ShouldFailOn(Validate(ShortTerm(days: [DayOfWeek.Monday, DayOfWeek.Monday])), nameof(SetShortTermPolicy.RecoveryPointDays));
        ShouldFailOn(Validate(ShortTerm(days: [DayOfWeek.Monday, (DayOfWeek)7])), "RecoveryPointDays[1]");
        ShouldPass(Validate(ShortTerm(days: [DayOfWeek.Saturday])));
    }

    [Theory]
    [InlineData("Europe/London")]
    [InlineData("America/New_York")]
    [InlineData("Asia/Kolkata")]
    [InlineData("Pacific/Chatham")]
    [InlineData("UTC")]
    public void Known_iana_time_zones_pass(string zone) => ShouldPass(Validate(ShortTerm(zone: zone)));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Mars/Olympus_Mons")]
    [InlineData("Europe/London ")]
    [InlineData("../../../etc/passwd")]
    [InlineData("/usr/share/zoneinfo/Europe/London")]
    [InlineData("Europe/../Europe/London")]
    public void Unknown_time_zones_fail(string? zone) => ShouldFailOn(Validate(ShortTerm(zone: zone)), nameof(SetShortTermPolicy.TimeZone));

    [Theory]
    [InlineData(64, 1, true)]
    [InlineData(65, 1, false)]
    [InlineData(32, 2, true)]
    [InlineData(33, 2, false)]
    public void At_most_64_recovery_points_are_kept_on_disk(int retentionDays, int timesPerDay, bool valid)
    {
        var times = Enumerable.Range(0, timesPerDay).Select(h => new TimeOnly(8 + h, 0)).ToArray();
        var result = Validate(ShortTerm(retentionDays: retentionDays, times: times, days: EveryDay));
        if (valid) ShouldPass(result);
        else ShouldFailOn(result, nameof(SetShortTermPolicy.RetentionDays));
    }

    [Theory]
    [InlineData(0L, false)]
    [InlineData(-1L, false)]
    [InlineData(1L, true)]
    [InlineData(null, true)]
    public void Expected_version_is_a_version_or_any(long? version, bool valid)
    {
        var result = Validate(ShortTerm(expectedVersion: version));
        if (valid) ShouldPass(result);
        else ShouldFailOn(result, nameof(SetShortTermPolicy.ExpectedVersion));
    }

    // ---- online ----

    private static SetOnlinePolicy Online(
        TimeOnly[]? times = null, OnlineSchedule? schedule = OnlineSchedule.Daily, DayOfWeek[]? days = null,
        int? daily = 30, int? weekly = 8, int? monthly = 12, int? yearly = 10) =>
        new(GroupId, 1, times ?? [new(21, 0)], schedule, days ?? [], daily, weekly, monthly, yearly);

    private static ValidationResult Validate(SetOnlinePolicy c) => new SetOnlinePolicyValidator().Validate(c);

    [Fact]
    public void A_typical_online_policy_passes() => ShouldPass(Validate(Online()));

    [Fact]
    public void Online_backups_are_one_or_two_distinct_times_a_day()
    {
        ShouldFailOn(Validate(Online(times: [])), nameof(SetOnlinePolicy.BackupTimes));
        ShouldPass(Validate(Online(times: [new(12, 0), new(21, 0)])));
        ShouldFailOn(Validate(Online(times: [new(6, 0), new(12, 0), new(21, 0)])), nameof(SetOnlinePolicy.BackupTimes));
        ShouldFailOn(Validate(Online(times: [new(21, 0), new(21, 0)])), nameof(SetOnlinePolicy.BackupTimes));
        ShouldFailOn(Validate(Online(times: [new(21, 0, 1)])), "BackupTimes[0]");
    }

    [Fact]
    public void Weekly_schedules_name_days_and_daily_ones_do_not()
    {
        ShouldPass(Validate(Online(schedule: OnlineSchedule.Weekly, days: [DayOfWeek.Saturday], daily: null)));
        ShouldFailOn(Validate(Online(schedule: OnlineSchedule.Weekly, days: [], daily: null)), nameof(SetOnlinePolicy.Days));
        ShouldFailOn(Validate(Online(schedule: OnlineSchedule.Daily, days: [DayOfWeek.Saturday])), nameof(SetOnlinePolicy.Days));
        ShouldFailOn(Validate(Online(schedule: OnlineSchedule.Weekly, days: [DayOfWeek.Saturday, DayOfWeek.Saturday], daily: null)), nameof(SetOnlinePolicy.Days));
        ShouldFailOn(Validate(Online(schedule: OnlineSchedule.Weekly, days: [(DayOfWeek)9], daily: null)), "Days[0]");
        ShouldFailOn(Validate(Online(schedule: null)), nameof(SetOnlinePolicy.Schedule));
        ShouldFailOn(Validate(Online(schedule: (OnlineSchedule)5)), nameof(SetOnlinePolicy.Schedule));
    }

    [Fact]
    public void A_weekly_schedule_keeps_no_daily_tier() =>
        ShouldFailOn(Validate(Online(schedule: OnlineSchedule.Weekly, days: [DayOfWeek.Sunday], daily: 30)), nameof(SetOnlinePolicy.DailyRetentionDays));

    [Theory]
    [InlineData(6, false)]
    [InlineData(7, true)]
    [InlineData(9_999, true)]
    [InlineData(10_000, false)]
    public void Daily_tier_is_7_to_9999_days(int days, bool valid) => Expect(Validate(Online(daily: days)), valid, nameof(SetOnlinePolicy.DailyRetentionDays));

    [Theory]
    [InlineData(3, false)]
    [InlineData(4, true)]
    [InlineData(5_163, true)]
    [InlineData(5_164, false)]
    public void Weekly_tier_is_4_to_5163_weeks(int weeks, bool valid) => Expect(Validate(Online(weekly: weeks)), valid, nameof(SetOnlinePolicy.WeeklyRetentionWeeks));

    [Theory]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(1_188, true)]
    [InlineData(1_189, false)]
    public void Monthly_tier_is_3_to_1188_months(int months, bool valid) => Expect(Validate(Online(monthly: months)), valid, nameof(SetOnlinePolicy.MonthlyRetentionMonths));

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(99, true)]
    [InlineData(100, false)]
    public void Yearly_tier_is_1_to_99_years(int years, bool valid) => Expect(Validate(Online(yearly: years)), valid, nameof(SetOnlinePolicy.YearlyRetentionYears));

    [Fact]
    public void Tiers_may_be_off_but_not_all_of_them()
    {
        ShouldPass(Validate(Online(daily: null, weekly: null, monthly: null, yearly: 1)));
        ShouldPass(Validate(Online(daily: 7, weekly: null, monthly: null, yearly: null)));
        ShouldFailOn(Validate(Online(daily: null, weekly: null, monthly: null, yearly: null)), "Retention");
    }

    // ---- throttling ----

    private static SetOnlineThrottling Throttling(int? work = 1024, int? nonWork = 10_240, DayOfWeek[]? days = null, TimeOnly? start = null, TimeOnly? end = null) =>
        new(GroupId, 1, work, nonWork, days ?? [DayOfWeek.Monday, DayOfWeek.Friday], start ?? new TimeOnly(9, 0), end ?? new TimeOnly(17, 0));

    private static ValidationResult Validate(SetOnlineThrottling c) => new SetOnlineThrottlingValidator().Validate(c);

    [Theory]
    [InlineData(511, false)]
    [InlineData(512, true)]
    [InlineData(1023 * 1024, true)]
    [InlineData(1023 * 1024 + 1, false)]
    public void Rates_are_512_kbps_to_1023_mbps(int kbps, bool valid)
    {
        Expect(Validate(Throttling(work: kbps)), valid, nameof(SetOnlineThrottling.WorkHoursKbps));
        Expect(Validate(Throttling(nonWork: kbps)), valid, nameof(SetOnlineThrottling.NonWorkHoursKbps));
    }

    [Fact]
    public void Work_hours_start_before_they_end_on_some_work_days()
    {
        ShouldFailOn(Validate(Throttling(start: new(9, 0), end: new(9, 0))), nameof(SetOnlineThrottling.WorkEnd));
        ShouldFailOn(Validate(Throttling(start: new(18, 0), end: new(8, 0))), nameof(SetOnlineThrottling.WorkEnd));
        ShouldPass(Validate(Throttling(start: new(0, 0), end: new(23, 59))));
        ShouldFailOn(Validate(Throttling(days: [])), nameof(SetOnlineThrottling.WorkDays));
        ShouldFailOn(Validate(Throttling(days: [DayOfWeek.Monday, DayOfWeek.Monday])), nameof(SetOnlineThrottling.WorkDays));
        ShouldFailOn(Validate(Throttling(work: null)), nameof(SetOnlineThrottling.WorkHoursKbps));
    }

    // ---- alert threshold ----

    [Theory]
    [InlineData(0, false)]
    [InlineData(1, true)]
    [InlineData(30, true)]
    [InlineData(31, false)]
    public void Alert_threshold_is_1_to_30_days(int days, bool valid) =>
        Expect(new SetAlertThresholdValidator().Validate(new SetAlertThreshold(GroupId, 1, days)), valid, nameof(SetAlertThreshold.DaysWithoutRecoveryPoint));

    private static void Expect(ValidationResult result, bool valid, string property)
    {
        if (valid) ShouldPass(result);
        else ShouldFailOn(result, property);
    }
}
