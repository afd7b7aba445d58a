using Backup.Commands.ProtectionGroups;

namespace Backup.Commands.Scheduling;

/// <summary>Which bandwidth limit of a group's online throttling applies at an instant (work hours are wall-clock times in the group's zone).</summary>
public static class ThrottleSchedule
{
    /// <summary>Bytes per second allowed at <paramref name="now"/>: the work-hours rate on work days within [start, end), else the other.</summary>
    public static long BytesPerSecond(OnlineThrottling throttling, string timeZone, DateTimeOffset now)
    {
        var local = TimeZoneInfo.ConvertTime(now, TimeZoneInfo.FindSystemTimeZoneById(timeZone));
        var time = TimeOnly.FromDateTime(local.DateTime);
        var work = throttling.WorkDays.Contains(local.DayOfWeek) && time >= throttling.WorkStart && time < throttling.WorkEnd;
        return (work ? throttling.WorkHoursKbps : throttling.NonWorkHoursKbps) * 1000L / 8;
    }
}
