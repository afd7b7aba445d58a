using Backup.Api.Infrastructure;
using Backup.Commands.GroupRuns;
using Backup.Projections.GroupRuns;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.GroupRuns;

/// <summary>The answer to "back up the group now": the run's id and the recovery point each data source will get.</summary>
public sealed record GroupRunResponse(Guid Id, IReadOnlyList<GroupRunMember> Members);

/// <summary>Group runs: every data source of a protection group backed up at one instant.</summary>
public static class GroupRunEndpoints
{
    public static IEndpointRouteBuilder MapGroupRuns(this IEndpointRouteBuilder app)
    {
        var groups = app.MapGroup("/api/protection-groups").WithTags("Group runs");
        groups.MapPost("/{groupId:guid}/backups", Request)
            .WithSummary("Back up every data source of the group now, at one instant (a group run)")
            .WithDescription("Queues a recovery point of each data source the group protects, all requested at the same instant, for their agents "
                + "to start together: a tiered application backed up at the same time. Returns the run's id and each member's recovery point; "
                + "GET /api/group-runs/{id} follows it. A member whose agent is off fails when the job is not picked up in time, and the run "
                + "then completes with failures, naming it. 404 unknown group; 409 a group that protects nothing.")
            .Produces<GroupRunResponse>(StatusCodes.Status202Accepted).ProducesProblem(404).ProducesProblem(409)
            .RequireAuthorization(AccessPolicies.Operate);
        groups.MapGet("/{groupId:guid}/runs", List).ReadsYourWrites(nameof(GroupRunView))
            .WithSummary("The group's runs, newest first")
            .WithDescription("limit 1–200 (default 20); a bad limit is a 400 naming it.")
            .ProducesValidationProblem()
            .RequireAuthorization(AccessPolicies.Read);
        app.MapGroup("/api/group-runs").WithTags("Group runs").MapGet("/{runId:guid}", Get).ReadsYourWrites(nameof(GroupRunView))
            .WithSummary("Get one group run")
            .WithDescription("Status (Requested, Running, Completed, CompletedWithFailures), each member's recovery point with its status, start, "
                + "end and failure reason, and the spread from the first member's start to the last one's. Restoring the group as of this run "
                + "is restoring each member's recovery point. 404 when no run has this id.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireAuthorization(AccessPolicies.Read);
        return app;
    }

    private static async Task<Accepted<GroupRunResponse>> Request(Guid groupId, HttpContext http, IMediator m, CancellationToken ct)
    {
        var run = await m.Send(new RequestGroupRun(groupId, http.User.Actor()), ct);
        return TypedResults.Accepted($"/api/group-runs/{run.RunId}", new GroupRunResponse(run.RunId, run.Members));
    }

    private static async Task<Ok<IReadOnlyList<GroupRunView>>> List(Guid groupId, IMediator m, CancellationToken ct, int limit = 20) =>
        TypedResults.Ok(await m.Send(new ListGroupRuns(groupId, limit), ct));

    private static async Task<Results<Ok<GroupRunView>, NotFound>> Get(Guid runId, IMediator m, CancellationToken ct) =>
        await m.Send(new GetGroupRun(runId), ct) is { } run ? TypedResults.Ok(run) : TypedResults.NotFound();
}
