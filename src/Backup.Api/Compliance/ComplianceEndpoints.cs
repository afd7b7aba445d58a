using Backup.Api.Infrastructure;
using Backup.Projections.Compliance;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Compliance;

public static class ComplianceEndpoints
{
    public static IEndpointRouteBuilder MapCompliance(this IEndpointRouteBuilder app)
    {
        var compliance = app.MapGroup("/api/compliance").WithTags("Compliance");
        compliance.MapGet("/", Get)
            .WithSummary("Compliance of every data source, per group and overall, now or as of a past instant")
            .WithDescription("Per data source: the last recovery point against the short-term schedule (RPO), recovery points held on disk against "
                + "the retention policy, the online copy lag against the online policy, damaged copies found by consistency checks, and the reasons "
                + "it is not compliant; per group and overall the % of compliant data sources. asOf (ISO 8601, not in the future) answers from the "
                + "facts valid at that instant, exactly what the live view said then; a data source protected later is not listed. "
                + "Filters: groupId, dataSourceId. The summaries count every data source of the filter; the list of data sources is paged in "
                + "group, path order: compliant=false lists only those falling short (true only the compliant ones), limit 1–1000 (default 100), "
                + "pass nextAfter as after for the next page.")
            .ProducesValidationProblem()
            .RequireAuthorization(AccessPolicies.Read);
        compliance.MapGet("/period", Period)
            .WithSummary("Missed recovery points and inconsistent days of every data source in a period")
            .WithDescription("from (required, inclusive) and to (exclusive, default now, not in the future), at most 366 days. Per data source: the "
                + "recovery points its short-term schedule wanted in the period (under the policy in force at each instant), how many were created, "
                + "the scheduled instants no recovery point answered, and the UTC dates on which a consistency check had found a copy damaged; "
                + "totals over all. Filters: groupId, dataSourceId.")
            .ProducesValidationProblem()
            .RequireAuthorization(AccessPolicies.Read);
        return app;
    }

    private static async Task<Ok<ComplianceReport>> Get(
        DateTimeOffset? asOf, Guid? groupId, Guid? dataSourceId, bool? compliant, string? after, int? limit, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new GetCompliance(asOf, groupId, dataSourceId, compliant, after, limit ?? GetCompliance.DefaultLimit), ct));

    private static async Task<Ok<CompliancePeriodReport>> Period(
        DateTimeOffset? from, DateTimeOffset? to, Guid? groupId, Guid? dataSourceId, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new GetCompliancePeriod(from, to, groupId, dataSourceId), ct));
}
