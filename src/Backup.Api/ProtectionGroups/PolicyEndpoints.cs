using Backup.Api.Infrastructure;
using Backup.Commands.ProtectionGroups;
using Mediator;

namespace Backup.Api.ProtectionGroups;

public sealed record ShortTermPolicyRequest(
    int? RetentionDays,
    SynchronisationMode? Synchronisation,
    int? SyncIntervalMinutes,
    IReadOnlyList<TimeOnly>? RecoveryPointTimes,
    IReadOnlyList<DayOfWeek>? RecoveryPointDays,
    string? TimeZone);

public sealed record OnlinePolicyRequest(
    IReadOnlyList<TimeOnly>? BackupTimes,
    OnlineSchedule? Schedule,
    IReadOnlyList<DayOfWeek>? Days,
    int? DailyRetentionDays,
    int? WeeklyRetentionWeeks,
    int? MonthlyRetentionMonths,
    int? YearlyRetentionYears);

public sealed record OnlineThrottlingRequest(int? WorkHoursKbps, int? NonWorkHoursKbps, IReadOnlyList<DayOfWeek>? WorkDays, TimeOnly? WorkStart, TimeOnly? WorkEnd);

public sealed record AlertThresholdRequest(int? DaysWithoutRecoveryPoint);

public sealed record GroupRunsRequest(bool? Together);

public sealed record VersionResponse(long Version);

/// <summary>Policy edits: PUT the whole policy, conditional on If-Match; answers with the group's new ETag.</summary>
public static class PolicyEndpoints
{
    private const string Conditional =
        "Requires If-Match with the group's ETag (or *): missing → 428, stale → 412. Invalid policies → 400 naming the field; unknown group → 404. Returns the new ETag.";

    public static RouteGroupBuilder MapPolicies(this RouteGroupBuilder groups)
    {
        groups.MapPut("/{groupId:guid}/short-term-policy", (Guid groupId, ShortTermPolicyRequest r, HttpContext http, IMediator m, CancellationToken ct) =>
                SendAsync(http, expected => m.Send(new SetShortTermPolicy(groupId, expected, r.RetentionDays, r.Synchronisation, r.SyncIntervalMinutes,
                    r.RecoveryPointTimes, r.RecoveryPointDays, r.TimeZone), ct)))
            .WithSummary("Set the short-term (disk) policy")
            .WithDescription("Retention 1–448 days; sync every 15/30/45/60/120/240/360/720/1440 minutes or just before each recovery point; " +
                             "recovery-point times (hh:mm) and days in the IANA time zone; at most 64 recovery points kept per data source. " + Conditional)
            .Produces<VersionResponse>().ProducesValidationProblem().ProducesProblem(404).ProducesProblem(412).ProducesProblem(422).ProducesProblem(428)
            .RequireAuthorization(AccessPolicies.Operate);
        groups.MapPut("/{groupId:guid}/online-policy", (Guid groupId, OnlinePolicyRequest r, HttpContext http, IMediator m, CancellationToken ct) =>
                SendAsync(http, expected => m.Send(new SetOnlinePolicy(groupId, expected, r.BackupTimes, r.Schedule, r.Days,
                    r.DailyRetentionDays, r.WeeklyRetentionWeeks, r.MonthlyRetentionMonths, r.YearlyRetentionYears), ct)))
            .WithSummary("Set the online (vault) policy")
            .WithDescription("At most 2 backup times a day; daily or weekly; GFS retention tiers (null = off): daily 7–9,999 days, weekly 4–5,163 weeks, " +
                             "monthly 3–1,188 months, yearly 1–99 years. Needs a short-term policy first (409). " + Conditional)
            .Produces<VersionResponse>().ProducesValidationProblem().ProducesProblem(404).ProducesProblem(409).ProducesProblem(412).ProducesProblem(428)
            .RequireAuthorization(AccessPolicies.Operate);
        groups.MapPut("/{groupId:guid}/throttling", (Guid groupId, OnlineThrottlingRequest r, HttpContext http, IMediator m, CancellationToken ct) =>
                SendAsync(http, expected => m.Send(new SetOnlineThrottling(groupId, expected, r.WorkHoursKbps, r.NonWorkHoursKbps, r.WorkDays, r.WorkStart, r.WorkEnd), ct)))
            .WithSummary("Set bandwidth throttling for online transfers")
            .WithDescription("Rates in Kbps, 512 to 1,047,552 (1023 Mbps), for work hours (start < end, on work days) and the rest. " + Conditional)
            .Produces<VersionResponse>().ProducesValidationProblem().ProducesProblem(404).ProducesProblem(412).ProducesProblem(428)
            .RequireAuthorization(AccessPolicies.Operate);
        groups.MapPut("/{groupId:guid}/alert-threshold", (Guid groupId, AlertThresholdRequest r, HttpContext http, IMediator m, CancellationToken ct) =>
                SendAsync(http, expected => m.Send(new SetAlertThreshold(groupId, expected, r.DaysWithoutRecoveryPoint), ct)))
            .WithSummary("Set the missed-backup alert threshold")
            .WithDescription("Days (1–30) without a recovery point before a data source raises a missed-backup alert. " + Conditional)
            .Produces<VersionResponse>().ProducesValidationProblem().ProducesProblem(404).ProducesProblem(412).ProducesProblem(428)
            .RequireAuthorization(AccessPolicies.Operate);
        groups.MapPut("/{groupId:guid}/group-runs", (Guid groupId, GroupRunsRequest r, HttpContext http, IMediator m, CancellationToken ct) =>
                SendAsync(http, expected => m.Send(new SetGroupRuns(groupId, expected, r.Together), ct)))
            .WithSummary("Back the group's data sources up together at its recovery-point times (group runs), or each on its own")
            .WithDescription("together: true → at each recovery-point time of the short-term policy the scheduler requests one group run of all the "
                + "group's data sources (GET /api/protection-groups/{id}/runs); false (the default) → a recovery point per data source. Sync-only "
                + "slots stay per data source. together missing → 400. " + Conditional)
            .Produces<VersionResponse>().ProducesValidationProblem().ProducesProblem(404).ProducesProblem(412).ProducesProblem(428)
            .RequireAuthorization(AccessPolicies.Operate);
        return groups;
    }

    private static async Task<IResult> SendAsync(HttpContext http, Func<long?, ValueTask<long>> send)
    {
        if (!ETags.TryReadIfMatch(http.Request, out var expected, out var problem)) return problem!;
        var version = await send(expected);
        ETags.Set(http.Response, version);
        return TypedResults.Ok(new VersionResponse(version));
    }
}
