using Backup.Api.Infrastructure;
using Backup.Api.ProtectionGroups;
using Backup.Projections.DataSources;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.DataSources;

public static class DataSourceEndpoints
{
    public static IEndpointRouteBuilder MapDataSources(this IEndpointRouteBuilder app)
    {
        var sources = app.MapGroup("/api/data-sources").WithTags("Data sources");
        sources.MapGet("/{dataSourceId:guid}", Get).WithSummary("Get a protected data source").RequireAuthorization(AccessPolicies.Read);
        sources.MapPost("/{dataSourceId:guid}/backups", RequestBackup)
            .WithSummary("Create a recovery point now")
            .WithDescription("Queues a backup for the data source's agent; returns the id of the recovery point it will create.")
            .RequireAuthorization(AccessPolicies.Operate);
        return app;
    }

    private static async Task<Results<Ok<DataSourceView>, NotFound>> Get(Guid dataSourceId, IMediator m, CancellationToken ct) =>
        await m.Send(new GetDataSource(dataSourceId), ct) is { } d ? TypedResults.Ok(d) : TypedResults.NotFound();

    private static async Task<Accepted<IdResponse>> RequestBackup(Guid dataSourceId, HttpContext http, IMediator m, CancellationToken ct)
    {
        var id = await m.Send(new Commands.TakingRecoveryPoints.RequestBackup(dataSourceId, http.User.Actor()), ct);
        return TypedResults.Accepted($"/api/recovery-points/{id}", new IdResponse(id));
    }
}
