using Backup.Commands.Common;
using Backup.Commands.ProtectionGroups;

namespace Backup.Commands.Scheduling;

/// <summary>
/// An online backup of a group fell due: the latest recovery points of its data sources that are not in the vault yet
/// are copied there. The stream id is <see cref="OnlineCalendar.OnlineBackupDueId"/>, so every scheduler that computes the
/// same instant collides on it and the backup is due once.
/// </summary>
public sealed record OnlineBackupDue(Guid DueId, Guid GroupId, DateTimeOffset DueAt);

/// <summary>
/// When an online policy wants the group copied to the vault, as UTC instants, from its backup times (at most two a day)
/// in the group's time zone: every day, or on the policy's days of the local week. Pure, like <see cref="ShortTermCalendar"/>,
/// and with its rules for wall clocks: a time in a spring-forward gap happens at the jump (several such times once), a
/// time that happens twice (fall back) happens at its first occurrence.
/// </summary>
public static class OnlineCalendar
{
    /// <summary>Every online backup due strictly after <paramref name="after"/>, ascending, without end.</summary>
    public static IEnumerable<DateTimeOffset> BackupTimes(OnlinePolicy policy, string timeZone, DateTimeOffset after)
    {
        var zone = TimeZoneInfo.FindSystemTimeZoneById(timeZone);
        var last = DateTimeOffset.MinValue;
        // Start a day early: a late time of the previous local date can still be after "after" in UTC.
        for (var date = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(after, zone).DateTime).AddDays(-1); ; date = date.AddDays(1))
        {
            if (policy.Schedule == OnlineSchedule.Weekly && !policy.Days.Contains(date.DayOfWeek)) continue;
            var due = policy.BackupTimes
                .Select(time => ShortTermCalendar.FirstOccurrence(date.ToDateTime(time), zone).ToUniversalTime())
                .Distinct()
                .Order();
            foreach (var at in due)
            {
                if (at <= after || at <= last) continue;
                last = at;
                yield return at;
            }
        }
    }

    /// <summary>The id of the online backup of a group due at one instant: a second scheduler computing it collides.</summary>
    public static Guid OnlineBackupDueId(Guid groupId, DateTimeOffset dueInstant) =>
        DeterministicGuid.Create($"online-backup-due:{groupId}:{dueInstant.ToUniversalTime():O}");

    /// <summary>The group's online backup due at <paramref name="dueAt"/>, on its own stream (<see cref="OnlineBackupDueId"/>).</summary>
    public static OnlineBackupDue Due(Guid groupId, DateTimeOffset dueAt) => new(OnlineBackupDueId(groupId, dueAt), groupId, dueAt.ToUniversalTime());
}
