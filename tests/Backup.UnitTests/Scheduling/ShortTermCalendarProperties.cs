using Backup.Commands.ProtectionGroups;
using Backup.Commands.Scheduling;
using FsCheck.Xunit;

namespace Backup.UnitTests.Scheduling;

/// <summary>
/// The calendar's rules checked on random policies in zones with awkward transitions: southern-hemisphere DST,
/// a 30-minute DST shift (Lord Howe), a 45-minute offset (Chatham), a gap at midnight (Santiago).
/// </summary>
public sealed class ShortTermCalendarProperties
{
    private static readonly string[] Zones =
    [
        "Europe/London", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Chatham",
        "America/Santiago", "Asia/Kolkata", "UTC",
    ];

    private static readonly DateTimeOffset Epoch = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static (ShortTermPolicy Policy, TimeZoneInfo Zone, DateTimeOffset After) Arrange(
        int zone, int[] minutes, byte daysMask, int interval, int afterMinutes)
    {
        var zoneId = Zones[Math.Abs(zone % Zones.Length)];
        var times = minutes.Select(m => TimeOnly.FromTimeSpan(TimeSpan.FromMinutes(Math.Abs(m % 1440)))).Distinct().Take(4).ToArray();
        if (times.Length == 0) times = [new TimeOnly(8, 0)];
        var days = Enum.GetValues<DayOfWeek>().Where(d => (daysMask & (1 << (int)d)) != 0).ToArray();
        if (days.Length == 0) days = [DayOfWeek.Sunday];
        var choice = Math.Abs(interval % (PolicyLimits.SyncIntervalsMinutes.Count + 1));
        int? syncMinutes = choice == PolicyLimits.SyncIntervalsMinutes.Count ? null : PolicyLimits.SyncIntervalsMinutes[choice];
        var policy = new ShortTermPolicy(5, syncMinutes is null ? SynchronisationMode.JustBeforeRecoveryPoint : SynchronisationMode.Interval,
            syncMinutes, times, days, zoneId);
        // Anywhere in six years, to the minute.
        var after = Epoch.AddMinutes(Math.Abs((long)afterMinutes) % (6L * 366 * 1440));
        return (policy, TimeZoneInfo.FindSystemTimeZoneById(zoneId), after);
    }

    private static bool IsJump(TimeZoneInfo zone, DateTimeOffset instant) =>
        zone.IsInvalidTime(TimeZoneInfo.ConvertTime(instant, zone).DateTime.AddMinutes(-1));

    [Property(MaxTest = 300)]
    public void Occurrences_ascend_strictly_after_the_instant_and_each_is_a_policy_time_or_a_jump(
        int zone, int[] minutes, byte daysMask, int interval, int afterMinutes)
    {
        var (policy, tz, after) = Arrange(zone, minutes, daysMask, interval, afterMinutes);
        var horizon = after.AddDays(9);
        var due = ShortTermCalendar.Occurrences(policy, after).TakeWhile(o => o.At < horizon).ToList();

        due.ShouldAllBe(o => o.At > after);
        due.Zip(due.Skip(1)).ShouldAllBe(p => p.First.At < p.Second.At);
        foreach (var o in due)
        {
            var local = TimeZoneInfo.ConvertTime(o.At, tz).DateTime;
            var minuteOfDay = (int)local.TimeOfDay.TotalMinutes;
            var onPolicy = o.Work.HasFlag(DueWork.RecoveryPoint)
                ? policy.RecoveryPointDays.Contains(local.DayOfWeek) && policy.RecoveryPointTimes.Contains(TimeOnly.FromDateTime(local))
                : minuteOfDay % policy.SyncIntervalMinutes!.Value == 0;
            (onPolicy || IsJump(tz, o.At)).ShouldBeTrue($"{o} is {local:yyyy-MM-dd HH:mm} in {policy.TimeZone}");
            o.Work.HasFlag(DueWork.Synchronisation).ShouldBeTrue();
        }
    }

    [Property(MaxTest = 300)]
    public void Every_existing_recovery_point_time_on_a_policy_day_is_due_once_at_its_first_occurrence(
        int zone, int[] minutes, byte daysMask, int interval, int afterMinutes)
    {
        var (policy, tz, after) = Arrange(zone, minutes, daysMask, interval, afterMinutes);
        var points = ShortTermCalendar.RecoveryPoints(policy, after).TakeWhile(p => p < after.AddDays(9)).ToHashSet();
        var firstDate = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(after, tz).DateTime).AddDays(1);

        for (var date = firstDate; date < firstDate.AddDays(7); date = date.AddDays(1))
        {
            if (!policy.RecoveryPointDays.Contains(date.DayOfWeek)) continue;
            foreach (var time in policy.RecoveryPointTimes)
            {
                var local = date.ToDateTime(time);
                if (tz.IsInvalidTime(local)) continue; // moved to the jump: covered by the other property
                var offset = tz.IsAmbiguousTime(local) ? tz.GetAmbiguousTimeOffsets(local).Max() : tz.GetUtcOffset(local);
                var instant = new DateTimeOffset(local, offset);
                points.ShouldContain(instant, $"{local:yyyy-MM-dd HH:mm} in {policy.TimeZone}");
                if (tz.IsAmbiguousTime(local))
                    points.ShouldNotContain(new DateTimeOffset(local, tz.GetAmbiguousTimeOffsets(local).Min()));
            }
        }
    }

    [Property(MaxTest = 300)]
    public void Interval_syncs_are_never_further_apart_than_the_interval_plus_one_repeated_hour(
        int zone, int[] minutes, byte daysMask, int interval, int afterMinutes)
    {
        var (policy, _, after) = Arrange(zone, minutes, daysMask, interval, afterMinutes);
        if (policy.SyncIntervalMinutes is not { } every) return;
        var syncs = ShortTermCalendar.Synchronisations(policy, after).TakeWhile(s => s < after.AddDays(4)).Prepend(after).ToList();

        syncs.Zip(syncs.Skip(1)).ShouldAllBe(p => p.Second - p.First <= TimeSpan.FromMinutes(every + 60));
    }
}
