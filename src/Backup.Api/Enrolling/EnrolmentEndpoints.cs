using Backup.Api.Infrastructure;
using Backup.Commands.Agents;
using Backup.Projections.Agents;
using Backup.Storage.Contracts;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Enrolling;

public sealed record IssueEnrolmentTokenRequest(int? ValidForMinutes);

public static class EnrolmentEndpoints
{
    public static IEndpointRouteBuilder MapEnrolment(this IEndpointRouteBuilder app)
    {
        var tokens = app.MapGroup("/api/enrolment-tokens").WithTags("Agents");
        tokens.MapPost("/", IssueToken)
            .WithSummary("Issue a one-time enrolment token")
            .WithDescription("The token enrols exactly one machine; it is shown once and only its hash is stored.")
            .RequireAuthorization(AccessPolicies.Operate);

        var agents = app.MapGroup("/api/agents").WithTags("Agents");
        agents.MapPost("/enrol", Enrol)
            .WithSummary("Enrol a protection agent with a one-time token")
            .WithDescription("Returns the agent's id and its credential. 401 for an unknown token, 403 for a spent or expired one.")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .AllowAnonymous(); // the one-time token is the credential
        agents.MapGet("/", async (IMediator mediator, CancellationToken ct) => TypedResults.Ok(await mediator.Send(new ListAgents(), ct)))
            .WithSummary("List enrolled agents").RequireAuthorization(AccessPolicies.Read);
        agents.MapGet("/{agentId:guid}", GetAgent).WithETag().WithSummary("Get one enrolled agent").RequireAuthorization(AccessPolicies.Read);
        return app;
    }

    private static async Task<Created<EnrolmentTokenIssuedResult>> IssueToken(IssueEnrolmentTokenRequest? request, IMediator mediator, CancellationToken ct)
    {
        var issued = await mediator.Send(new IssueEnrolmentToken(request?.ValidForMinutes ?? 60), ct);
        return TypedResults.Created($"/api/enrolment-tokens/{issued.TokenId}", issued);
    }

    private static async Task<Created<EnrolAgentResponse>> Enrol(EnrolAgentRequest request, IMediator mediator, CancellationToken ct)
    {
        var enrolment = await mediator.Send(new EnrolAgent(request.Token ?? "", request.MachineName ?? ""), ct);
        return TypedResults.Created($"/api/agents/{enrolment.AgentId}", new EnrolAgentResponse(enrolment.AgentId, enrolment.Credential));
    }

    private static async Task<Results<Ok<AgentView>, NotFound>> GetAgent(Guid agentId, IMediator mediator, CancellationToken ct) =>
        await mediator.Send(new GetAgent(agentId), ct) is { } agent ? TypedResults.Ok(agent) : TypedResults.NotFound();
}
