using Backup.Commands.ProtectionGroups;
using Backup.Commands.Scheduling;
using FsCheck.Xunit;

namespace Backup.UnitTests.Scheduling;

/// <summary>The online calendar on random policies in zones with awkward transitions (as for the short-term calendar).</summary>
public sealed class OnlineCalendarProperties
{
    private static readonly string[] Zones =
    [
        "Europe/London", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Chatham", "America/Santiago", "UTC",
    ];

    private static readonly DateTimeOffset Epoch = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Property(MaxTest = 300)]
    public void Backups_ascend_after_the_instant_at_most_two_a_local_day_on_the_policys_days_at_its_times_or_a_jump(
        int zone, int first, int second, byte daysMask, bool weekly, int afterMinutes)
    {
        var zoneId = Zones[Math.Abs(zone % Zones.Length)];
        var tz = TimeZoneInfo.FindSystemTimeZoneById(zoneId);
        TimeOnly[] times = [.. new[] { first, second }.Select(m => TimeOnly.FromTimeSpan(TimeSpan.FromMinutes(Math.Abs(m % 1440)))).Distinct()];
        var days = Enum.GetValues<DayOfWeek>().Where(d => (daysMask & (1 << (int)d)) != 0).ToArray();
        if (days.Length == 0) days = [DayOfWeek.Monday];
        var policy = new OnlinePolicy(times, weekly ? OnlineSchedule.Weekly : OnlineSchedule.Daily, weekly ? days : [], new GfsRetention(7, null, null, null));
        var after = Epoch.AddMinutes(Math.Abs((long)afterMinutes) % (6L * 366 * 1440));

        var due = OnlineCalendar.BackupTimes(policy, zoneId, after).TakeWhile(at => at < after.AddDays(15)).ToList();

        due.ShouldNotBeEmpty();
        due.ShouldAllBe(at => at > after);
        due.Zip(due.Skip(1)).ShouldAllBe(p => p.First < p.Second);
        foreach (var at in due)
        {
            var local = TimeZoneInfo.ConvertTime(at, tz).DateTime;
            var isJump = tz.IsInvalidTime(local.AddMinutes(-1));
            (times.Contains(TimeOnly.FromDateTime(local)) || isJump).ShouldBeTrue($"{at:O} is {local:yyyy-MM-dd HH:mm} in {zoneId}");
            if (weekly && !isJump) days.ShouldContain(local.DayOfWeek);
        }
        due.GroupBy(at => TimeZoneInfo.ConvertTime(at, tz).Date).ShouldAllBe(d => d.Count() <= PolicyLimits.MaxOnlineBackupsPerDay);
    }
}
