using Backup.Api.Infrastructure;
using Backup.Api.ProtectionGroups;
using Backup.Commands.DataSources;
using Backup.Projections.DataSources;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.DataSources;

/// <summary>Body of PUT /api/data-sources/{id}/filters: both lists whole (null or empty = none).</summary>
public sealed record DataSourceFiltersRequest(IReadOnlyList<string>? Include, IReadOnlyList<string>? Exclude);

public static class DataSourceEndpoints
{
    public static IEndpointRouteBuilder MapDataSources(this IEndpointRouteBuilder app)
    {
        var sources = app.MapGroup("/api/data-sources").WithTags("Data sources");
        sources.MapGet("/{dataSourceId:guid}", Get).WithETag().WithSummary("Get a protected data source")
            .WithDescription("With its include/exclude patterns and, once removed, when and whether its data was kept; the ETag header is its version, for If-Match on PUT …/filters.")
            .RequireAuthorization(AccessPolicies.Read);
        sources.MapPost("/{dataSourceId:guid}/backups", RequestBackup)
            .WithSummary("Create a recovery point now")
            .WithDescription("Queues a backup for the data source's agent; returns the id of the recovery point it will create. 409 once the data source is removed.")
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireAuthorization(AccessPolicies.Operate);
        sources.MapPost("/{dataSourceId:guid}/synchronisations", RequestSync)
            .WithSummary("Synchronise now: bring the server's copy of the data source up to date without creating a recovery point")
            .WithDescription("Queues a synchronisation for the data source's agent (what a policy's sync-only slots do); its new data lands on the "
                + "server's disk and the next recovery point has only the changes since to send. Returns the job's id (GET /api/jobs/{id}). "
                + "404 unknown data source; 409 once it is removed.")
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireAuthorization(AccessPolicies.Operate);
        sources.MapPut("/{dataSourceId:guid}/filters", SetFilters)
            .WithSummary("Replace the data source's include and exclude patterns")
            .WithDescription("Glob patterns relative to the folder, at most 64 per list and 256 characters each: '*' and '?' within a name, '**' for any " +
                             "folders, a trailing '/' for folders only; without a '/' inside a pattern matches at any depth ('*.log'), with one it is anchored " +
                             "('docs/*.md'). No include pattern = everything; exclusion wins; an excluded folder is not entered. Taken from the next backup the " +
                             "agent starts. Requires If-Match with the data source's ETag (or *): missing → 428, stale → 412. Invalid patterns → 400 naming " +
                             "the field; unknown data source → 404; removed → 409. Returns the new ETag.")
            .Produces<VersionResponse>().ProducesValidationProblem().ProducesProblem(404).ProducesProblem(409).ProducesProblem(412).ProducesProblem(428)
            .RequireAuthorization(AccessPolicies.Operate);
        sources.MapDelete("/{dataSourceId:guid}", Remove)
            .WithSummary("Stop protecting a data source, keeping (data=retain) or deleting (data=delete) its recovery points")
            .WithDescription("retain (operator or admin): no further backups, queued ones are cancelled, its recovery points stay until retention expires " +
                             "them. delete (admin, with a security PIN in X-Security-Pin: missing, wrong, used or expired → 403): also deletes every recovery " +
                             "point of it, which can no longer be restored. Either way the folder can be protected again. Unknown → 404; already removed → 409 " +
                             "(the PIN stays unused); data missing or not retain/delete → 400 naming 'data'.")
            .Produces<DataSourceRemoval>().ProducesValidationProblem().ProducesProblem(403).ProducesProblem(404).ProducesProblem(409)
            .RequireAuthorization(AccessPolicies.Operate)
            .RequireForQueryValue("data", "delete", AccessPolicies.Admin, "remove-data-source-delete-data");
        return app;
    }

    private static async Task<Results<Ok<DataSourceView>, NotFound>> Get(Guid dataSourceId, HttpContext http, IMediator m, CancellationToken ct)
    {
        if (await m.Send(new GetDataSource(dataSourceId), ct) is not { } source) return TypedResults.NotFound();
        ETags.Set(http.Response, source.StreamVersion);
        return TypedResults.Ok(source);
    }

    private static async Task<Accepted<IdResponse>> RequestBackup(Guid dataSourceId, HttpContext http, IMediator m, CancellationToken ct)
    {
        var id = await m.Send(new Commands.RecoveryPoints.RequestBackup(dataSourceId, http.User.Actor()), ct);
        return TypedResults.Accepted($"/api/recovery-points/{id}", new IdResponse(id));
    }

    private static async Task<Accepted<IdResponse>> RequestSync(Guid dataSourceId, HttpContext http, IMediator m, CancellationToken ct)
    {
        var id = await m.Send(new Commands.Synchronising.RequestSync(dataSourceId, http.User.Actor()), ct);
        return TypedResults.Accepted($"/api/jobs/{id}", new IdResponse(id));
    }

    private static async Task<IResult> SetFilters(Guid dataSourceId, DataSourceFiltersRequest request, HttpContext http, IMediator m, CancellationToken ct)
    {
        if (!ETags.TryReadIfMatch(http.Request, "GET /api/data-sources/{id}", out var expected, out var problem)) return problem!;
        var version = await m.Send(new SetDataSourceFilters(dataSourceId, expected, request.Include, request.Exclude), ct);
        ETags.Set(http.Response, version);
        return TypedResults.Ok(new VersionResponse(version));
    }

    private static async Task<Ok<DataSourceRemoval>> Remove(Guid dataSourceId, string? data, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new RemoveDataSource(dataSourceId, ParseData(data)), ct));

    /// <summary>Only the two names, in any case; anything else (numbers included) is left for the validator to refuse, naming 'data'.</summary>
    private static DataOnRemoval? ParseData(string? data) => data?.Trim().ToLowerInvariant() switch
    {
        "retain" => DataOnRemoval.Retain,
        "delete" => DataOnRemoval.Delete,
        _ => null,
    };
}
