using Backup.Api.Infrastructure;
using Backup.Commands.Access;
using Backup.Projections.Access;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Access;

public sealed record IssueApiKeyRequest(string? Name, string? Role);

/// <summary>People's API keys and the security PIN that destructive operations ask for.</summary>
public static class AccessEndpoints
{
    public static IEndpointRouteBuilder MapAccess(this IEndpointRouteBuilder app)
    {
        var access = app.MapGroup("/api/access").WithTags("Access");
        access.MapPost("/keys", IssueKey)
            .WithSummary("Issue an API key to a person")
            .WithDescription("Role is admin, operator or auditor. The key is shown once, only its hash is stored; send it as 'Authorization: ApiKey <key>'. " +
                             "Names are unique for good, also after revocation (409), since the audit trail names people by key (user:<name>).")
            .ProducesValidationProblem().ProducesProblem(409)
            .RequireAuthorization(AccessPolicies.Admin);
        access.MapGet("/keys", async (IMediator m, CancellationToken ct) => TypedResults.Ok(await m.Send(new ListApiKeys(), ct)))
            .WithSummary("List API keys: name, role, issued and revoked times (never the key)")
            .RequireAuthorization(AccessPolicies.Audit);
        access.MapDelete("/keys/{keyId:guid}", RevokeKey)
            .WithSummary("Revoke an API key (needs a security PIN)")
            .WithDescription($"Destructive: send a PIN from POST /api/access/security-pin in {SecurityPin.Header} (missing, wrong, used or expired → 403). " +
                             "From then on the key is refused (401). Unknown key 404, already revoked 409; the PIN stays unused then.")
            .ProducesProblem(403).ProducesProblem(404).ProducesProblem(409)
            .RequireAuthorization(AccessPolicies.Admin)
            .RequireSecurityPin("revoke-api-key");
        access.MapPost("/security-pin", IssuePin)
            .WithSummary("Get a security PIN for one destructive operation")
            .WithDescription($"Valid 5 minutes, once; send it in {SecurityPin.Header}. Only its hash is stored.")
            .RequireAuthorization(AccessPolicies.Admin);
        return app;
    }

    private static async Task<Created<ApiKeyIssuedResult>> IssueKey(IssueApiKeyRequest request, IMediator m, CancellationToken ct)
    {
        var issued = await m.Send(new IssueApiKey(request.Name ?? "", request.Role ?? ""), ct);
        return TypedResults.Created($"/api/access/keys/{issued.KeyId}", issued);
    }

    private static async Task<NoContent> RevokeKey(Guid keyId, IMediator m, CancellationToken ct)
    {
        await m.Send(new RevokeApiKey(keyId), ct);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<SecurityPinIssuedResult>> IssuePin(IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new IssueSecurityPin(), ct));
}
