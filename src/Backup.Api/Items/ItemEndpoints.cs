using Backup.Api.Infrastructure;
using Backup.Projections;
using Backup.Projections.Items;
using Backup.Projections.RecoveryPoints;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Items;

public static class ItemEndpoints
{
    public static IEndpointRouteBuilder MapItems(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/items").WithTags("Item catalog").RequireAuthorization(AccessPolicies.Read)
            .MapGet("/", Search)
            .WithSummary("Where are the copies of a file: every kept recovery point holding a path, a file-name pattern, or what is under a folder")
            .WithDescription("path: an exact absolute path; name: a file-name pattern (* any run of characters, ? one character, case-insensitive, "
                + "the whole name must match, e.g. *.docx); under: an absolute folder, everything below it; at least one of them, combinable, "
                + "and dataSourceId to narrow. Each item lists the recovery points that hold it, newest first, with its kind, size and mtime "
                + "in that point and whether the point is on disk and/or in the vault (expired and deleted points are left out). relativePath "
                + "is what a restore's paths takes. Items are ordered by path; limit 1–200 (default 50), pass nextAfter as after for the next "
                + "page. asOf (ISO 8601, not in the future): the points that held each item then, with their tiers then. Bad values are a 400 "
                + "naming the parameter.")
            .ProducesValidationProblem();
        return app;
    }

    private static async Task<Ok<Page<ItemLocations>>> Search(
        string? path, string? name, string? under, Guid? dataSourceId, string? after, int? limit, DateTimeOffset? asOf, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new SearchItems(path, name, under, dataSourceId, after, limit ?? 50, asOf), ct));
}
