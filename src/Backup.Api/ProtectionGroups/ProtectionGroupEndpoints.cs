using Backup.Api.Infrastructure;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Projections.DataSources;
using Backup.Projections.ProtectionGroups;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.ProtectionGroups;

public sealed record CreateProtectionGroupRequest(string? Name);

/// <summary><see cref="Include"/> and <see cref="Exclude"/>: optional glob patterns relative to the folder (see docs/api.md).</summary>
public sealed record AddDataSourceRequest(Guid? AgentId, DataSourceKind? Kind, string? Path, IReadOnlyList<string>? Include = null, IReadOnlyList<string>? Exclude = null);

public static class ProtectionGroupEndpoints
{
    public static IEndpointRouteBuilder MapProtectionGroups(this IEndpointRouteBuilder app)
    {
        var groups = app.MapGroup("/api/protection-groups").WithTags("Protection groups");
        groups.MapPost("/", Create).WithSummary("Create a protection group").WithDescription("Names are unique, case-insensitively (409).")
            .ProducesProblem(StatusCodes.Status409Conflict)
            .RequireAuthorization(AccessPolicies.Operate);
        groups.MapGet("/", async (IMediator m, CancellationToken ct) => TypedResults.Ok(await m.Send(new ListProtectionGroups(), ct)))
            .WithSummary("List protection groups").RequireAuthorization(AccessPolicies.Read);
        groups.MapGet("/{groupId:guid}", Get).WithETag().WithSummary("Get a protection group")
            .WithDescription("With its policies; the ETag header is the group's version, to send back in If-Match when editing a policy.")
            .RequireAuthorization(AccessPolicies.Read);
        groups.MapPolicies();
        groups.MapPost("/{groupId:guid}/data-sources", AddDataSource)
            .WithSummary("Protect a folder of an enrolled agent in this group")
            .WithDescription("The path is absolute on the agent's machine; a folder is protected at most once (409) while it is protected. " +
                             "Optional include/exclude glob patterns relative to the folder (at most 64 each, 256 characters): '*' and '?' within a name, " +
                             "'**' for any folders, a trailing '/' for folders only, no '/' inside = at any depth ('*.log'), else anchored ('docs/*.md'); " +
                             "absolute, '..' or empty patterns → 400 naming the field.")
            .Produces<IdResponse>(StatusCodes.Status201Created).ProducesValidationProblem().ProducesProblem(404).ProducesProblem(409).ProducesProblem(422)
            .RequireAuthorization(AccessPolicies.Operate);
        return app;
    }

    private static async Task<Created<IdResponse>> Create(CreateProtectionGroupRequest request, IMediator m, CancellationToken ct)
    {
        var id = await m.Send(new CreateProtectionGroup(request.Name ?? ""), ct);
        return TypedResults.Created($"/api/protection-groups/{id}", new IdResponse(id));
    }

    private static async Task<Results<Ok<ProtectionGroupView>, NotFound>> Get(Guid groupId, HttpContext http, IMediator m, CancellationToken ct)
    {
        if (await m.Send(new GetProtectionGroup(groupId), ct) is not { } group) return TypedResults.NotFound();
        ETags.Set(http.Response, group.Version);
        return TypedResults.Ok(group);
    }

    private static async Task<Created<IdResponse>> AddDataSource(Guid groupId, AddDataSourceRequest request, IMediator m, CancellationToken ct)
    {
        var id = await m.Send(new AddDataSource(groupId, request.AgentId ?? Guid.Empty, request.Kind, request.Path ?? "", request.Include, request.Exclude), ct);
        return TypedResults.Created($"/api/data-sources/{id}", new IdResponse(id));
    }
}
