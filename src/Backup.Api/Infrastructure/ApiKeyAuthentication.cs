using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Backup.Commands.Access;
using Mediator;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Backup.Api.Infrastructure;

/// <summary>
/// People authenticate with "Authorization: ApiKey {key}": a key an admin issued (POST /api/access/keys), or the
/// bootstrap admin key from configuration (Backup:BootstrapAdminKey), which acts as "user:bootstrap-admin".
/// </summary>
public sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IMediator mediator,
    IOptions<ServerOptions> server, IProblemDetailsService problems)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "ApiKey";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith(SchemeName + " ", StringComparison.Ordinal)) return AuthenticateResult.NoResult();
        var key = header[(SchemeName.Length + 1)..].Trim();
        var person = IsBootstrapKey(key, server.Value.BootstrapAdminKey)
            ? new Person(ApiKey.BootstrapName, Roles.Admin)
            : await mediator.Send(new AuthenticateApiKey(key), Context.RequestAborted);
        if (person is null) return AuthenticateResult.Fail("The API key is not valid or has been revoked.");
        var identity = new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, $"user:{person.Name}"), new Claim(ClaimTypes.Role, person.Role)], SchemeName, ClaimTypes.Name, ClaimTypes.Role);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    /// <summary>Requests without any credential land here too (the default scheme forwards them): a 401 ProblemDetails.</summary>
    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = $"{SchemeName}, {AgentAuthenticationHandler.SchemeName}";
        await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = Context,
            ProblemDetails = new ProblemDetails
            {
                Status = StatusCodes.Status401Unauthorized, Title = "Unauthenticated.",
                Detail = result.Failure?.Message ?? "Send 'Authorization: ApiKey <key>' (people) or 'Authorization: Agent <credential>' (agents).",
            },
        });
    }

    private static bool IsBootstrapKey(string presented, string? configured) =>
        !string.IsNullOrEmpty(configured)
        && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(presented)), SHA256.HashData(Encoding.UTF8.GetBytes(configured)));
}
