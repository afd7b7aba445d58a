using Backup.Commands.ProtectionGroups;
using Backup.Commands.Scheduling;

namespace Backup.UnitTests.Scheduling;

public sealed class ShortTermCalendarTests
{
    private static readonly DayOfWeek[] EveryDay = Enum.GetValues<DayOfWeek>();
    private const DueWork SyncAndPoint = DueWork.Synchronisation | DueWork.RecoveryPoint;

    private static ShortTermPolicy Policy(string zone, string[] times, DayOfWeek[]? days = null, int? syncMinutes = null) => new(
        RetentionDays: 5,
        syncMinutes is null ? SynchronisationMode.JustBeforeRecoveryPoint : SynchronisationMode.Interval,
        syncMinutes,
        [.. times.Select(t => TimeOnly.Parse(t, System.Globalization.CultureInfo.InvariantCulture))],
        days ?? EveryDay,
        zone);

    private static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, System.Globalization.CultureInfo.InvariantCulture);

    private static string[] Iso(IEnumerable<DateTimeOffset> instants, int count) =>
        [.. instants.Take(count).Select(i => i.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm'Z'", System.Globalization.CultureInfo.InvariantCulture))];

    [Fact]
    public void Recovery_points_are_wall_clock_times_in_the_groups_zone()
    {
        var policy = Policy("Europe/London", ["08:00", "20:00"]);

        // 14 July is summer time (UTC+1); 14 January is GMT.
        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-07-14T06:00Z")), 3).ShouldBe(["2026-07-14T07:00Z", "2026-07-14T19:00Z", "2026-07-15T07:00Z"]);
        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-01-14T06:00Z")), 2).ShouldBe(["2026-01-14T08:00Z", "2026-01-14T20:00Z"]);
    }

    [Fact]
    public void After_is_exclusive_a_point_due_exactly_now_is_not_due_again()
    {
        var policy = Policy("UTC", ["08:00"]);

        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-07-14T08:00Z")), 1).ShouldBe(["2026-07-15T08:00Z"]);
        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-07-14T07:59:59Z")), 1).ShouldBe(["2026-07-14T08:00Z"]);
    }

    [Fact]
    public void New_York_spring_forward_moves_a_missing_time_to_the_jump()
    {
        // 8 March 2026: 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
        var policy = Policy("America/New_York", ["02:30"]);

        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-03-07T12:00Z")), 2)
            .ShouldBe(["2026-03-08T07:00Z", "2026-03-09T06:30Z"]); // 03:00 EDT, then 02:30 EDT
    }

    [Fact]
    public void Two_times_inside_one_gap_make_one_recovery_point()
    {
        var policy = Policy("America/New_York", ["02:15", "02:45", "09:00"]);

        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-03-08T05:00Z")), 2).ShouldBe(["2026-03-08T07:00Z", "2026-03-08T13:00Z"]);
    }

    [Fact]
    public void New_York_fall_back_takes_a_repeated_time_once_at_its_first_occurrence()
    {
        // 1 November 2026: 02:00 EDT falls back to 01:00 EST, so 01:30 happens at 05:30Z and at 06:30Z.
        var policy = Policy("America/New_York", ["01:30"]);

        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-10-31T12:00Z")), 3)
            .ShouldBe(["2026-11-01T05:30Z", "2026-11-02T06:30Z", "2026-11-03T06:30Z"]);
    }

    [Fact]
    public void London_spring_forward_and_fall_back()
    {
        var policy = Policy("Europe/London", ["01:30"]);

        // 29 March 2026: 01:00 GMT jumps to 02:00 BST; 01:30 → the jump, 01:00Z.
        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-03-28T12:00Z")), 2).ShouldBe(["2026-03-29T01:00Z", "2026-03-30T00:30Z"]);
        // 25 October 2026: 02:00 BST falls back to 01:00 GMT; 01:30 BST (00:30Z) comes first.
        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-10-24T12:00Z")), 2).ShouldBe(["2026-10-25T00:30Z", "2026-10-26T01:30Z"]);
    }

    [Fact]
    public void Fifteen_minute_sync_keeps_its_pace_across_the_spring_gap()
    {
        var policy = Policy("America/New_York", ["08:00"], syncMinutes: 15);

        // 01:45 EST, then 02:00–02:45 do not exist and collapse into the jump at 03:00 EDT.
        Iso(ShortTermCalendar.Synchronisations(policy, Utc("2026-03-08T06:30Z")), 4)
            .ShouldBe(["2026-03-08T06:45Z", "2026-03-08T07:00Z", "2026-03-08T07:15Z", "2026-03-08T07:30Z"]);
    }

    [Fact]
    public void Fifteen_minute_sync_runs_through_both_passes_of_the_repeated_hour()
    {
        var policy = Policy("America/New_York", ["08:00"], syncMinutes: 15);

        Iso(ShortTermCalendar.Synchronisations(policy, Utc("2026-11-01T05:30Z")), 6)
            .ShouldBe(["2026-11-01T05:45Z", "2026-11-01T06:00Z", "2026-11-01T06:15Z", "2026-11-01T06:30Z", "2026-11-01T06:45Z", "2026-11-01T07:00Z"]);
    }

    [Fact]
    public void Hourly_sync_in_London_on_the_autumn_day_has_25_slots()
    {
        var policy = Policy("Europe/London", ["12:00"], syncMinutes: 60);
        var dayStart = Utc("2026-10-24T23:00Z"); // 00:00 BST on 25 October
        var dayEnd = Utc("2026-10-26T00:00Z");   // 00:00 GMT on 26 October

        ShortTermCalendar.Synchronisations(policy, dayStart.AddTicks(-1)).TakeWhile(s => s < dayEnd).Count().ShouldBe(25);
    }

    [Fact]
    public void Fifteen_minute_sync_merges_with_recovery_points_on_its_grid_and_adds_one_for_times_off_it()
    {
        var policy = Policy("Europe/London", ["08:00", "12:10"], syncMinutes: 15);

        ShortTermCalendar.Occurrences(policy, Utc("2026-07-14T06:40Z")).Take(3).ShouldBe(
        [
            new DueOccurrence(Utc("2026-07-14T06:45Z"), DueWork.Synchronisation),
            new DueOccurrence(Utc("2026-07-14T07:00Z"), SyncAndPoint), // 08:00 BST: one job, sync then snapshot
            new DueOccurrence(Utc("2026-07-14T07:15Z"), DueWork.Synchronisation),
        ]);
        ShortTermCalendar.Occurrences(policy, Utc("2026-07-14T10:55Z")).Take(4).ShouldBe(
        [
            new DueOccurrence(Utc("2026-07-14T11:00Z"), DueWork.Synchronisation),
            new DueOccurrence(Utc("2026-07-14T11:10Z"), SyncAndPoint), // 12:10 is off the 15-minute grid
            new DueOccurrence(Utc("2026-07-14T11:15Z"), DueWork.Synchronisation),
            new DueOccurrence(Utc("2026-07-14T11:30Z"), DueWork.Synchronisation),
        ]);
    }

    [Fact]
    public void Fifteen_minute_sync_makes_96_syncs_and_the_policys_points_in_a_day()
    {
        var policy = Policy("UTC", ["08:00", "12:00", "17:30"], syncMinutes: 15);
        var day = ShortTermCalendar.Occurrences(policy, Utc("2026-07-13T23:59Z")).TakeWhile(o => o.At < Utc("2026-07-15T00:00Z")).ToList();

        day.Count.ShouldBe(96);
        day.Count(o => o.Work == SyncAndPoint).ShouldBe(3);
    }

    [Fact]
    public void Just_before_a_recovery_point_syncs_only_with_each_point()
    {
        var policy = Policy("UTC", ["08:00", "20:00"]);

        ShortTermCalendar.Occurrences(policy, Utc("2026-07-14T00:00Z")).Take(3).ShouldBe(
        [
            new DueOccurrence(Utc("2026-07-14T08:00Z"), SyncAndPoint),
            new DueOccurrence(Utc("2026-07-14T20:00Z"), SyncAndPoint),
            new DueOccurrence(Utc("2026-07-15T08:00Z"), SyncAndPoint),
        ]);
    }

    [Fact]
    public void Weekly_days_pick_local_dates_and_syncs_run_every_day()
    {
        // Monday and Thursday 21:00 in New York are Tuesday and Friday in UTC.
        var policy = Policy("America/New_York", ["21:00"], [DayOfWeek.Thursday, DayOfWeek.Monday], syncMinutes: 1440);

        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2026-07-14T12:00Z")), 4) // a Tuesday
            .ShouldBe(["2026-07-17T01:00Z", "2026-07-21T01:00Z", "2026-07-24T01:00Z", "2026-07-28T01:00Z"]);
        Iso(ShortTermCalendar.Synchronisations(policy, Utc("2026-07-14T12:00Z")), 3) // midnight daily, plus each point
            .ShouldBe(["2026-07-15T04:00Z", "2026-07-16T04:00Z", "2026-07-17T01:00Z"]);
    }

    [Fact]
    public void Leap_day_is_a_tuesday_like_any_other()
    {
        // 29 February 2028 is a Tuesday; 23:45 EST that night is 1 March in UTC.
        var policy = Policy("America/New_York", ["23:45"], [DayOfWeek.Tuesday]);

        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2028-02-27T00:00Z")), 2).ShouldBe(["2028-03-01T04:45Z", "2028-03-08T04:45Z"]);
    }

    [Fact]
    public void Daily_points_walk_through_february_in_a_leap_year_and_in_a_common_year()
    {
        var policy = Policy("UTC", ["12:00"]);

        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2028-02-28T13:00Z")), 2).ShouldBe(["2028-02-29T12:00Z", "2028-03-01T12:00Z"]);
        Iso(ShortTermCalendar.RecoveryPoints(policy, Utc("2027-02-28T13:00Z")), 1).ShouldBe(["2027-03-01T12:00Z"]);
    }

    [Fact]
    public void Month_and_year_ends_roll_over_in_local_time()
    {
        // Auckland is UTC+12 in July: 00:30 on 1 July local is still 30 June in UTC.
        var auckland = Policy("Pacific/Auckland", ["00:30"], [DayOfWeek.Wednesday]);
        Iso(ShortTermCalendar.RecoveryPoints(auckland, Utc("2026-06-30T12:00Z")), 2).ShouldBe(["2026-06-30T12:30Z", "2026-07-07T12:30Z"]);

        var london = Policy("Europe/London", ["23:30"]);
        Iso(ShortTermCalendar.RecoveryPoints(london, Utc("2026-12-31T12:00Z")), 2).ShouldBe(["2026-12-31T23:30Z", "2027-01-01T23:30Z"]);
        Iso(ShortTermCalendar.RecoveryPoints(london, Utc("2026-04-30T12:00Z")), 2).ShouldBe(["2026-04-30T22:30Z", "2026-05-01T22:30Z"]);
    }

    [Fact]
    public void Occurrences_ascend_strictly_through_a_whole_year_of_transitions()
    {
        var policy = Policy("America/New_York", ["00:00", "01:30", "02:30", "23:59"], syncMinutes: 45);
        // Local midnight to local midnight (EST both ends).
        var year = ShortTermCalendar.Occurrences(policy, Utc("2026-01-01T05:00Z").AddTicks(-1)).TakeWhile(o => o.At < Utc("2027-01-01T05:00Z")).ToList();

        year.Zip(year.Skip(1)).ShouldAllBe(pair => pair.First.At < pair.Second.At);
        // Every day keeps its four points: 02:30 on the spring day moves to 03:00, 01:30 on the autumn day happens once.
        year.Count(o => o.Work.HasFlag(DueWork.RecoveryPoint)).ShouldBe(365 * 4);
    }

    [Fact]
    public void Backup_due_id_is_the_same_for_the_same_instant_whatever_its_offset()
    {
        var group = Guid.Parse("0195f3a0-0000-7000-8000-0000000000b1");
        var source = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d1");

        var id = ShortTermCalendar.BackupDueId(group, source, Utc("2026-07-14T07:00Z"));

        ShortTermCalendar.BackupDueId(group, source, Utc("2026-07-14T08:00+01:00")).ShouldBe(id);
        ShortTermCalendar.BackupDueId(group, source, Utc("2026-07-14T07:15Z")).ShouldNotBe(id);
        ShortTermCalendar.BackupDueId(group, Guid.NewGuid(), Utc("2026-07-14T07:00Z")).ShouldNotBe(id);
        id.Version.ShouldBe(5);
    }
}
