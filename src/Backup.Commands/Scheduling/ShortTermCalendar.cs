using Backup.Commands.Common;
using Backup.Commands.ProtectionGroups;

namespace Backup.Commands.Scheduling;

[Flags]
public enum DueWork
{
    Synchronisation = 1,

    /// <summary>A recovery point is always taken right after a synchronisation, so it carries that flag too.</summary>
    RecoveryPoint = 2,
}

public readonly record struct DueOccurrence(DateTimeOffset At, DueWork Work);

/// <summary>
/// When a short-term policy wants work done, as UTC instants, from wall-clock times in the group's time zone.
/// Pure: the caller passes "now" (from its TimeProvider) and takes as many occurrences as it needs.
/// <para>Rules, where wall clocks and instants disagree:</para>
/// <list type="bullet">
/// <item>A wall-clock time that does not exist (spring forward, e.g. 02:30 in New York on the second Sunday of
/// March) happens at the first valid instant after the gap, the moment the clocks jump (03:00 local). Several
/// times inside one gap collapse into that single instant.</item>
/// <item>A recovery-point time that happens twice (fall back, 01:30 in New York on the first Sunday of November)
/// happens once, at its first occurrence (daylight time).</item>
/// <item>Synchronisation slots are the multiples of the interval from local midnight (every interval on the list
/// divides 1440). A slot that happens twice happens twice: syncing is about elapsed time, so in the repeated hour
/// the replica is still brought up to date every interval. A slot in a gap moves to the jump like any other time.</item>
/// <item>Every recovery point is preceded by a synchronisation in the same job; when a sync slot falls on a
/// recovery-point instant there is one occurrence doing both. "Just before a recovery point" has no other slots.</item>
/// <item>Recovery points only on the policy's days of week (of the local date); synchronisation slots every day.</item>
/// </list>
/// </summary>
public static class ShortTermCalendar
{
    /// <summary>Everything due strictly after <paramref name="after"/>, ascending, without end.</summary>
    public static IEnumerable<DueOccurrence> Occurrences(ShortTermPolicy policy, DateTimeOffset after)
    {
        var zone = TimeZoneInfo.FindSystemTimeZoneById(policy.TimeZone);
        var days = policy.RecoveryPointDays.ToHashSet();
        var last = DateTimeOffset.MinValue;
        // Start a day early: a late slot of the previous local date can still be after "after" in UTC.
        for (var date = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(after, zone).DateTime).AddDays(-1); ; date = date.AddDays(1))
        {
            var due = new SortedDictionary<DateTimeOffset, DueWork>();
            if (days.Contains(date.DayOfWeek))
                foreach (var time in policy.RecoveryPointTimes)
                    Add(due, FirstOccurrence(date.ToDateTime(time), zone), DueWork.Synchronisation | DueWork.RecoveryPoint);
            if (policy is { Synchronisation: SynchronisationMode.Interval, SyncIntervalMinutes: { } interval })
                for (var minute = 0; minute < 24 * 60; minute += interval)
                    foreach (var at in AllOccurrences(date.ToDateTime(TimeOnly.MinValue).AddMinutes(minute), zone))
                        Add(due, at, DueWork.Synchronisation);
            foreach (var (at, work) in due)
            {
                if (at <= after || at <= last) continue;
                last = at;
                yield return new DueOccurrence(at, work);
            }
        }
    }

    public static IEnumerable<DateTimeOffset> RecoveryPoints(ShortTermPolicy policy, DateTimeOffset after) =>
        Occurrences(policy, after).Where(o => o.Work.HasFlag(DueWork.RecoveryPoint)).Select(o => o.At);

    public static IEnumerable<DateTimeOffset> Synchronisations(ShortTermPolicy policy, DateTimeOffset after) =>
        Occurrences(policy, after).Where(o => o.Work.HasFlag(DueWork.Synchronisation)).Select(o => o.At);

    /// <summary>The id of the backup due for one data source at one instant: a second scheduler computing it collides.</summary>
    public static Guid BackupDueId(Guid groupId, Guid dataSourceId, DateTimeOffset dueInstant) =>
        DeterministicGuid.Create($"backup-due:{groupId}:{dataSourceId}:{dueInstant.ToUniversalTime():O}");

    /// <summary>The group run the scheduler requests at a recovery-point time of a group that runs together (its members' points: <see cref="BackupDueId"/>).</summary>
    public static Guid GroupRunDueId(Guid groupId, DateTimeOffset dueInstant) =>
        DeterministicGuid.Create($"group-run-due:{groupId}:{dueInstant.ToUniversalTime():O}");

    /// <summary>The id of the synchronisation due for one data source at one (sync-only) instant, deterministic like <see cref="BackupDueId"/>.</summary>
    public static Guid SyncDueId(Guid groupId, Guid dataSourceId, DateTimeOffset dueInstant) =>
        DeterministicGuid.Create($"sync-due:{groupId}:{dataSourceId}:{dueInstant.ToUniversalTime():O}");

    private static void Add(SortedDictionary<DateTimeOffset, DueWork> due, DateTimeOffset at, DueWork work)
    {
        var utc = at.ToUniversalTime();
        due[utc] = due.GetValueOrDefault(utc) | work;
    }

    internal static DateTimeOffset FirstOccurrence(DateTime local, TimeZoneInfo zone) => AllOccurrences(local, zone).First();

    /// <summary>The instants a local wall-clock time names: one, two (fall back; earlier first) or, in a gap, the jump.</summary>
    private static IEnumerable<DateTimeOffset> AllOccurrences(DateTime local, TimeZoneInfo zone)
    {
        if (zone.IsAmbiguousTime(local))
        {
            // The larger offset is daylight time, which comes first.
            foreach (var offset in zone.GetAmbiguousTimeOffsets(local).OrderByDescending(o => o))
                yield return new DateTimeOffset(local, offset);
            yield break;
        }
        // Gaps are whole minutes long and times are whole minutes, so stepping by a minute lands on the gap's end.
        var valid = local;
        for (var guard = 0; zone.IsInvalidTime(valid) && guard < 24 * 60; guard++) valid = valid.AddMinutes(1);
        yield return new DateTimeOffset(valid, zone.GetUtcOffset(valid));
    }
}
