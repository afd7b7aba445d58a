using Backup.Api.Infrastructure;
using Backup.Projections.Restores;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Restores;

public static class RestoreEndpoints
{
    public static IEndpointRouteBuilder MapRestores(this IEndpointRouteBuilder app)
    {
        var restores = app.MapGroup("/api/restores").WithTags("Restores").RequireAuthorization(AccessPolicies.Read).ReadsYourWrites(nameof(RestoreView));
        restores.MapGet("/{restoreId:guid}", Get).WithETag().WithSummary("Get a restore job: status, files and bytes restored, failure reason");
        return app;
    }

    private static async Task<Results<Ok<RestoreView>, NotFound>> Get(Guid restoreId, IMediator m, CancellationToken ct) =>
        await m.Send(new GetRestore(restoreId), ct) is { } r ? TypedResults.Ok(r) : TypedResults.NotFound();
}
