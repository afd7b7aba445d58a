using Backup.Commands.ProtectionGroups;
using Backup.Commands.Scheduling;

namespace Backup.UnitTests.Scheduling;

public sealed class OnlineCalendarTests
{
    private static readonly GfsRetention Daily30 = new(30, null, null, null);

    private static OnlinePolicy Policy(string[] times, params DayOfWeek[] weeklyDays) => new(
        [.. times.Select(t => TimeOnly.Parse(t, System.Globalization.CultureInfo.InvariantCulture))],
        weeklyDays.Length == 0 ? OnlineSchedule.Daily : OnlineSchedule.Weekly, weeklyDays, Daily30);

    private static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, System.Globalization.CultureInfo.InvariantCulture);

    private static string[] Iso(IEnumerable<DateTimeOffset> instants, int count) =>
        [.. instants.Take(count).Select(i => i.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm'Z'", System.Globalization.CultureInfo.InvariantCulture))];

    [Fact]
    public void Daily_times_are_wall_clock_times_in_the_groups_zone_after_is_exclusive()
    {
        // Amsterdam is UTC+2 in July, UTC+1 in January.
        var policy = Policy(["01:00", "13:00"]);

        Iso(OnlineCalendar.BackupTimes(policy, "Europe/Amsterdam", Utc("2026-07-14T11:00Z")), 3)
            .ShouldBe(["2026-07-14T23:00Z", "2026-07-15T11:00Z", "2026-07-15T23:00Z"]);
        Iso(OnlineCalendar.BackupTimes(policy, "Europe/Amsterdam", Utc("2026-01-14T12:00Z")), 1).ShouldBe(["2026-01-15T00:00Z"]);
        Iso(OnlineCalendar.BackupTimes(policy, "UTC", Utc("2026-01-14T13:00Z")), 1).ShouldBe(["2026-01-15T01:00Z"]);
    }

    [Fact]
    public void Weekly_runs_only_on_the_policys_local_days()
    {
        // Saturday 23:30 in Sydney (AEST, UTC+10) is Saturday 13:30 UTC; the local day, not the UTC day, decides.
        var policy = Policy(["23:30"], DayOfWeek.Saturday);

        Iso(OnlineCalendar.BackupTimes(policy, "Australia/Sydney", Utc("2026-07-01T00:00Z")), 3)
            .ShouldBe(["2026-07-04T13:30Z", "2026-07-11T13:30Z", "2026-07-18T13:30Z"]);
    }

    [Fact]
    public void Spring_forward_moves_a_missing_time_to_the_jump_and_merges_times_inside_the_gap()
    {
        // Amsterdam, 29 March 2026: 02:00 CET jumps to 03:00 CEST.
        Iso(OnlineCalendar.BackupTimes(Policy(["02:30"]), "Europe/Amsterdam", Utc("2026-03-28T12:00Z")), 2)
            .ShouldBe(["2026-03-29T01:00Z", "2026-03-30T00:30Z"]);
        Iso(OnlineCalendar.BackupTimes(Policy(["02:10", "02:50"]), "Europe/Amsterdam", Utc("2026-03-29T00:00Z")), 2)
            .ShouldBe(["2026-03-29T01:00Z", "2026-03-30T00:10Z"]);
    }

    [Fact]
    public void Fall_back_runs_a_repeated_time_once_at_its_first_occurrence()
    {
        // Amsterdam, 25 October 2026: 03:00 CEST falls back to 02:00 CET, so 02:30 happens twice; the first is 00:30 UTC.
        Iso(OnlineCalendar.BackupTimes(Policy(["02:30"]), "Europe/Amsterdam", Utc("2026-10-24T12:00Z")), 2)
            .ShouldBe(["2026-10-25T00:30Z", "2026-10-26T01:30Z"]);
    }

    [Fact]
    public void Month_and_year_ends_and_the_leap_day_are_ordinary_days()
    {
        var daily = Policy(["22:00"]);
        Iso(OnlineCalendar.BackupTimes(daily, "UTC", Utc("2026-01-30T23:00Z")), 3).ShouldBe(["2026-01-31T22:00Z", "2026-02-01T22:00Z", "2026-02-02T22:00Z"]);
        Iso(OnlineCalendar.BackupTimes(daily, "UTC", Utc("2028-02-28T23:00Z")), 2).ShouldBe(["2028-02-29T22:00Z", "2028-03-01T22:00Z"]);
        Iso(OnlineCalendar.BackupTimes(daily, "America/New_York", Utc("2026-12-31T12:00Z")), 2).ShouldBe(["2027-01-01T03:00Z", "2027-01-02T03:00Z"]);

        // Tuesday 29 February 2028 in a weekly Tuesday schedule.
        Iso(OnlineCalendar.BackupTimes(Policy(["06:00"], DayOfWeek.Tuesday), "UTC", Utc("2028-02-23T00:00Z")), 2).ShouldBe(["2028-02-29T06:00Z", "2028-03-07T06:00Z"]);
    }

    [Fact]
    public void Due_ids_are_the_same_for_every_worker_and_differ_by_group_and_instant()
    {
        var group = Guid.Parse("0195f3a0-0000-7000-8000-0000000000e1");
        var at = Utc("2026-07-14T11:00Z");

        OnlineCalendar.OnlineBackupDueId(group, at).ShouldBe(OnlineCalendar.OnlineBackupDueId(group, at.ToOffset(TimeSpan.FromHours(2))));
        OnlineCalendar.OnlineBackupDueId(group, at).ShouldNotBe(OnlineCalendar.OnlineBackupDueId(group, at.AddMinutes(1)));
        OnlineCalendar.OnlineBackupDueId(group, at).ShouldNotBe(OnlineCalendar.OnlineBackupDueId(Guid.NewGuid(), at));
        OnlineCalendar.OnlineBackupDueId(group, at).ShouldNotBe(ShortTermCalendar.BackupDueId(group, group, at));
    }
}
