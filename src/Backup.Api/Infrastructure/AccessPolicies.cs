using Backup.Commands.Access;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;

namespace Backup.Api.Infrastructure;

/// <summary>
/// One named policy per set of roles; every endpoint names one (or is explicitly anonymous). Agents are never people:
/// the agent policy asks for an agent credential, the others for a person's role.
/// </summary>
public static class AccessPolicies
{
    /// <summary>Access keys and security PINs.</summary>
    public const string Admin = "Admin";

    /// <summary>Groups, policies, data sources, backups, restores, enrolment tokens.</summary>
    public const string Operate = "Operate";

    /// <summary>Every view of the catalog.</summary>
    public const string Read = "Read";

    /// <summary>The audit trail and who holds a key.</summary>
    public const string Audit = "Audit";

    /// <summary>An agent's own jobs and uploads (the route's agent id is checked by RequireSelf).</summary>
    public const string Agent = AgentAuthenticationHandler.Policy;

    /// <summary>Picks the handler by the Authorization header's scheme; no header is a people's 401.</summary>
    public const string DefaultScheme = "Backup";

    public static IServiceCollection AddAccess(this IServiceCollection services)
    {
        services.AddAuthentication(DefaultScheme)
            .AddPolicyScheme(DefaultScheme, "Agent credential or API key", o => o.ForwardDefaultSelector = http =>
                http.Request.Headers.Authorization.ToString().StartsWith(AgentAuthenticationHandler.SchemeName + " ", StringComparison.Ordinal)
                    ? AgentAuthenticationHandler.SchemeName
                    : ApiKeyAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, AgentAuthenticationHandler>(AgentAuthenticationHandler.SchemeName, null)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Admin, p => p.RequireRole(Roles.Admin))
            .AddPolicy(Operate, p => p.RequireRole(Roles.Admin, Roles.Operator))
            .AddPolicy(Read, p => p.RequireRole(Roles.Admin, Roles.Operator, Roles.Auditor))
            .AddPolicy(Audit, p => p.RequireRole(Roles.Admin, Roles.Auditor))
            .AddPolicy(Agent, p => p.RequireClaim(AgentAuthenticationHandler.AgentIdClaim))
            // An endpoint someone forgot to classify is closed, not open.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        return services;
    }
}
