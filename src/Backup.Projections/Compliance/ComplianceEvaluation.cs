using System.Globalization;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.Scheduling;

namespace Backup.Projections.Compliance;

/// <summary>Recovery point objective: the newest recovery point against the one the short-term schedule wanted by now.</summary>
/// <param name="ExpectedAt">The latest recovery-point time of the schedule that should be done by now (null: none yet).</param>
public sealed record RpoStatus(bool Met, DateTimeOffset? LastRecoveryPointAt, double? LastRecoveryPointAgeMinutes, DateTimeOffset? ExpectedAt, int? SyncIntervalMinutes);

/// <summary>Recovery points held on disk against the short-term retention range and the 64-point cap.</summary>
/// <param name="Overdue">Points the policy no longer keeps that are still held past the retention worker's allowance.</param>
public sealed record RetentionStatus(bool Met, int RecoveryPointsOnDisk, int? KeptByPolicy, int? RetentionDays, DateTimeOffset? OldestOnDiskAt, int Overdue);

/// <summary>Online copy lag: how old the newest recovery point in the vault is, against what the online schedule should have copied.</summary>
/// <param name="ExpectedCreatedAt">The newest recovery point the vault should hold by now (created at); null when none is due yet.</param>
public sealed record OnlineStatus(bool Met, bool OnlinePolicySet, DateTimeOffset? NewestVaultPointCreatedAt, double? LagMinutes, DateTimeOffset? ExpectedCreatedAt);

public sealed record ConsistencyStatus(bool Consistent, IReadOnlyList<InconsistentCopy> Damaged);

public sealed record DataSourceCompliance(
    Guid DataSourceId, Guid GroupId, Guid AgentId, string Path, bool Compliant, IReadOnlyList<string> Reasons,
    RpoStatus Rpo, RetentionStatus Retention, OnlineStatus Online, ConsistencyStatus Consistency);

/// <summary>
/// Compliance of one data source at an instant, from the facts valid then. Pure: the live view passes "now", the as-of view a
/// past instant, and both read the same facts, so the past answer is the answer the live view gave at that instant.
/// </summary>
public static class ComplianceEvaluation
{
    /// <summary>A scheduled recovery point may take this long to be created before its slot counts against the RPO.</summary>
    public static readonly TimeSpan JobAllowance = TimeSpan.FromMinutes(30);

    /// <summary>A copy to the vault may take this long after it fell due (or after the point was created, without an online policy).</summary>
    public static readonly TimeSpan CopyAllowance = TimeSpan.FromHours(2);

    /// <summary>The retention worker runs hourly: a point may outlive its range (or the cap) by this much before it counts as over-retained.</summary>
    public static readonly TimeSpan RetentionAllowance = TimeSpan.FromHours(2);

    /// <param name="dueTimes">Shared by the data sources of one report: those of a group share their schedule, so its due times are computed once.</param>
    /// <param name="explain">False: the reasons are left out (the summaries of a report only count; the checks and the verdict are the same).</param>
    public static DataSourceCompliance Evaluate(ComplianceFacts facts, DateTimeOffset at, DueTimes? dueTimes = null, bool explain = true)
    {
        dueTimes ??= new DueTimes();
        var reasons = explain ? new List<string>() : null;
        var rpo = Rpo(facts, at, reasons, dueTimes);
        var retention = Retention(facts, at, reasons);
        var online = Online(facts, at, reasons, dueTimes);
        var damaged = facts.Damaged.OrderBy(d => d.Since).ThenBy(d => d.RecoveryPointId).ToList();
        foreach (var copy in damaged)
            reasons?.Add($"the {copy.Tier.ToString().ToLowerInvariant()} copy of recovery point {copy.RecoveryPointId} was found damaged ({copy.DamagedPacks} pack(s)) at {Instant(copy.Since)}");
        // Every check that is not met gives a reason, and only those do: compliant exactly when there is none to give.
        var compliant = rpo.Met && retention.Met && online.Met && damaged.Count == 0;
        return new DataSourceCompliance(
            facts.DataSourceId, facts.GroupId, facts.AgentId, facts.Path, compliant, reasons ?? [],
            rpo, retention, online, new ConsistencyStatus(damaged.Count == 0, damaged));
    }

    /// <summary>The latest scheduled recovery point at or before <paramref name="upTo"/> and not before <paramref name="since"/>.</summary>
    public static DateTimeOffset? LastDueRecoveryPoint(ShortTermPolicy policy, DateTimeOffset since, DateTimeOffset upTo)
    {
        var last = LastDueRecoveryPoint(policy, upTo);
        return last is { } found && found >= since ? found : null;
    }

    private static DateTimeOffset? LastDueRecoveryPoint(ShortTermPolicy policy, DateTimeOffset upTo)
    {
        // Recovery points fall on at least one day a week, so eight days back always reach the previous one. Sync slots do not
        // move recovery-point instants, so the calendar is asked without them.
        var pointsOnly = policy with { Synchronisation = SynchronisationMode.JustBeforeRecoveryPoint, SyncIntervalMinutes = null };
        DateTimeOffset? last = null;
        foreach (var due in ShortTermCalendar.RecoveryPoints(pointsOnly, upTo - TimeSpan.FromDays(8)))
        {
            if (due > upTo) break;
            last = due;
        }
        return last;
    }

    /// <summary>The latest online backup time at or before <paramref name="upTo"/> and not before <paramref name="since"/>.</summary>
    public static DateTimeOffset? LastDueOnlineBackup(OnlinePolicy policy, string timeZone, DateTimeOffset since, DateTimeOffset upTo)
    {
        var last = LastDueOnlineBackup(policy, timeZone, upTo);
        return last is { } found && found >= since ? found : null;
    }

    private static DateTimeOffset? LastDueOnlineBackup(OnlinePolicy policy, string timeZone, DateTimeOffset upTo)
    {
        DateTimeOffset? last = null;
        foreach (var due in OnlineCalendar.BackupTimes(policy, timeZone, upTo - TimeSpan.FromDays(8)))
        {
            if (due > upTo) break;
            last = due;
        }
        return last;
    }

    private static RpoStatus Rpo(ComplianceFacts facts, DateTimeOffset at, List<string>? reasons, DueTimes dueTimes)
    {
        var age = facts.LastRecoveryPointAt is { } last ? Math.Round((at - last).TotalMinutes, 1) : (double?)null;
        if (facts.ShortTerm is not { } policy)
        {
            reasons?.Add("its protection group has no short-term policy, so no recovery point is scheduled");
            return new RpoStatus(false, facts.LastRecoveryPointAt, age, null, null);
        }
        var since = Max(facts.ProtectedAt, facts.ShortTermSetAt ?? facts.ProtectedAt);
        var expected = dueTimes.LastRecoveryPoint(facts, policy, at - JobAllowance) is { } lastDue && lastDue >= since ? lastDue : (DateTimeOffset?)null;
        var met = expected is not { } due || facts.LastRecoveryPointAt >= due;
        if (!met && reasons is not null)
        {
            var what = facts.LastRecoveryPointAt is { } lastAt ? $"last recovery point {Duration(at - lastAt)} old" : "no recovery point yet";
            reasons.Add($"{what}; {Describe(policy)}, and the one due at {Instant(expected!.Value)} is missing");
        }
        return new RpoStatus(met, facts.LastRecoveryPointAt, age, expected, policy.SyncIntervalMinutes);
    }

    private static RetentionStatus Retention(ComplianceFacts facts, DateTimeOffset at, List<string>? reasons)
    {
        // Newest first; points created at the same instant are interchangeable here, so times alone order them.
        var held = facts.HeldOnDisk().Where(createdAt => createdAt <= at).OrderDescending().ToList();
        var oldest = held.Count > 0 ? held[^1] : (DateTimeOffset?)null;
        if (facts.ShortTerm is not { } policy)
            return new RetentionStatus(true, held.Count, null, null, oldest, 0);
        var range = TimeSpan.FromDays(policy.RetentionDays);
        var overdue = 0;
        for (var i = 0; i < held.Count; i++)
        {
            // No longer kept from the moment it left the range, or from the moment a point newer than the newest 64 arrived.
            var notKeptSince = held[i] + range;
            if (i >= PolicyLimits.MaxRecoveryPointsOnDisk)
            {
                var pushedOut = held[i - PolicyLimits.MaxRecoveryPointsOnDisk];
                if (pushedOut < notKeptSince) notKeptSince = pushedOut;
            }
            if (notKeptSince + RetentionAllowance < at) overdue++;
        }
        if (overdue > 0)
            reasons?.Add($"{overdue} recovery point(s) held on disk beyond the retention policy ({policy.RetentionDays} days, at most {PolicyLimits.MaxRecoveryPointsOnDisk} points); {held.Count} held, the oldest from {Instant(oldest!.Value)}");
        return new RetentionStatus(overdue == 0, held.Count, facts.RecoveryPointsKeptOnDisk, policy.RetentionDays, oldest, overdue);
    }

    private static OnlineStatus Online(ComplianceFacts facts, DateTimeOffset at, List<string>? reasons, DueTimes dueTimes)
    {
        var newest = facts.NewestVaultPointCreatedAt is { } n && n <= at ? n : (DateTimeOffset?)null;
        var lag = newest is { } v ? Math.Round((at - v).TotalMinutes, 1) : (double?)null;
        DateTimeOffset? copyDue;
        if (facts.Online is { } online && facts.ShortTerm is { } shortTerm)
            copyDue = dueTimes.LastOnlineBackup(facts, online, shortTerm.TimeZone, at - CopyAllowance) is { } lastDue
                && lastDue >= Max(facts.ProtectedAt, facts.OnlineSetAt ?? facts.ProtectedAt) ? lastDue : null;
        else
            copyDue = at - CopyAllowance; // without an online policy every recovery point is copied as soon as it is created
        // The vault should hold the newest recovery point that existed when the copy fell due.
        var expected = copyDue is { } due ? facts.HeldOnDisk().Where(createdAt => createdAt <= due).Select(createdAt => (DateTimeOffset?)createdAt).Max() : null;
        var met = expected is not { } wanted || newest >= wanted;
        if (!met && reasons is not null)
        {
            var what = newest is { } copied ? $"the newest vault copy is of a recovery point {Duration(at - copied)} old" : "no recovery point has been copied to the vault";
            var policy = facts.Online is { } p
                ? $"the online backup due at {Instant(copyDue!.Value)} ({DescribeOnline(p)}) should have copied the one created at {Instant(expected!.Value)}"
                : $"the recovery point created at {Instant(expected!.Value)} should be in the vault by now";
            reasons.Add($"{what}; {policy}");
        }
        return new OnlineStatus(met, facts.Online is not null, newest, lag, expected);
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.Zero) span = TimeSpan.Zero;
        if (span.TotalDays >= 1) return $"{(int)span.TotalDays}d {span.Hours}h";
        if (span.TotalHours >= 1) return $"{(int)span.TotalHours}h {span.Minutes}m";
        return $"{(int)span.TotalMinutes} min";
    }

    private static string Instant(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm'Z'", CultureInfo.InvariantCulture);

    private static string Describe(ShortTermPolicy policy)
    {
        var sync = policy is { Synchronisation: SynchronisationMode.Interval, SyncIntervalMinutes: { } minutes }
            ? $"policy syncs every {minutes} min"
            : "policy syncs just before each recovery point";
        var all = policy.RecoveryPointTimes.Select(t => t.ToString("HH:mm", CultureInfo.InvariantCulture)).ToList();
        var times = all.Count <= 4 ? "at " + string.Join(", ", all) : $"{all.Count} times a day, {all[0]} to {all[^1]},";
        var days = policy.RecoveryPointDays.Count == 7 ? "every day" : string.Join(", ", policy.RecoveryPointDays.Select(d => d.ToString()[..3]));
        return $"{sync} and takes recovery points {times} ({policy.TimeZone}) {days}";
    }

    private static string DescribeOnline(OnlinePolicy policy)
    {
        var times = string.Join(", ", policy.BackupTimes.Select(t => t.ToString("HH:mm", CultureInfo.InvariantCulture)));
        return policy.Schedule == OnlineSchedule.Weekly
            ? $"online backups at {times} on {string.Join(", ", policy.Days.Select(d => d.ToString()[..3]))}"
            : $"online backups daily at {times}";
    }
}

/// <summary>
/// Due times computed once per schedule within one report: the data sources of a group carry the same policy (same group and
/// time it was set), so the calendar is walked once per group rather than once per data source.
/// </summary>
public sealed class DueTimes
{
    private readonly Dictionary<(Guid Group, DateTimeOffset? SetAt, DateTimeOffset UpTo), DateTimeOffset?> _points = [];
    private readonly Dictionary<(Guid Group, DateTimeOffset? SetAt, DateTimeOffset? ShortTermSetAt, DateTimeOffset UpTo), DateTimeOffset?> _online = [];

    internal DateTimeOffset? LastRecoveryPoint(ComplianceFacts facts, ShortTermPolicy policy, DateTimeOffset upTo)
    {
        var key = (facts.GroupId, facts.ShortTermSetAt, upTo);
        if (!_points.TryGetValue(key, out var last))
            _points[key] = last = ComplianceEvaluation.LastDueRecoveryPoint(policy, DateTimeOffset.MinValue, upTo);
        return last;
    }

    internal DateTimeOffset? LastOnlineBackup(ComplianceFacts facts, OnlinePolicy policy, string timeZone, DateTimeOffset upTo)
    {
        // The online calendar runs in the short-term policy's time zone, so both set times identify it.
        var key = (facts.GroupId, facts.OnlineSetAt, facts.ShortTermSetAt, upTo);
        if (!_online.TryGetValue(key, out var last))
            _online[key] = last = ComplianceEvaluation.LastDueOnlineBackup(policy, timeZone, DateTimeOffset.MinValue, upTo);
        return last;
    }
}
