using System.Security.Claims;
using System.Text.Encodings.Web;
using Backup.Commands.Agents;
using Backup.Commands.Common;
using Backup.Storage.Contracts;
using Mediator;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Backup.Api.Infrastructure;

/// <summary>Agents authenticate with "Authorization: Agent {credential}", the credential they got at enrolment.</summary>
public sealed class AgentAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IMediator mediator)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = AgentHeaders.Scheme;
    public const string Policy = "Agent";
    public const string AgentIdClaim = "agent_id";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith(SchemeName + " ", StringComparison.Ordinal)) return AuthenticateResult.NoResult();
        var agentId = await mediator.Send(new AuthenticateAgent(header[(SchemeName.Length + 1)..].Trim()), Context.RequestAborted);
        if (agentId is null) return AuthenticateResult.Fail("The agent credential is not valid.");
        var identity = new ClaimsIdentity([new Claim(AgentIdClaim, agentId.Value.ToString()), new Claim(ClaimTypes.Name, $"agent:{agentId}")], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }
}

public static class AgentIdentity
{
    /// <summary>An agent may act only as itself: another agent's id in the route is a 403.</summary>
    public static Guid RequireSelf(this ClaimsPrincipal user, Guid agentIdInRoute)
    {
        var claim = user.FindFirstValue(AgentAuthenticationHandler.AgentIdClaim);
        if (claim is null || Guid.Parse(claim) != agentIdInRoute)
            throw new ForbiddenException("This credential belongs to another agent.");
        return agentIdInRoute;
    }

    /// <summary>"user:&lt;key name&gt;" for people, "agent:&lt;id&gt;" for agents; "anonymous" only where no credential is needed (enrolment).</summary>
    public static string Actor(this ClaimsPrincipal user) => user.Identity?.Name ?? "anonymous";
}
