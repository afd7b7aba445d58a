using Backup.Commands.Access;
using Backup.Commands.Common;
using Mediator;
using Microsoft.AspNetCore.Authorization;

namespace Backup.Api.Infrastructure;

/// <summary>Marks an endpoint as destructive: it runs only with a valid, unexpired, unused X-Security-Pin.</summary>
public sealed record RequiresSecurityPin(string Operation);

public static class SecurityPinFilter
{
    /// <summary>
    /// Missing, wrong, used or expired PIN → 403 ProblemDetails naming the header, before the handler runs. A good PIN's
    /// use is staged in the request's session and saved with the operation's own events (see <see cref="UseSecurityPin"/>).
    /// </summary>
    public static RouteHandlerBuilder RequireSecurityPin(this RouteHandlerBuilder endpoint, string operation) => endpoint
        .WithMetadata(new RequiresSecurityPin(operation))
        .AddEndpointFilter(async (context, next) =>
        {
            await UsePinAsync(context.HttpContext, operation);
            return await next(context);
        });

    /// <summary>
    /// For an endpoint whose destructive variant is chosen by a query value (<c>DELETE /api/data-sources/{id}?data=delete</c>):
    /// that variant also needs <paramref name="policy"/> (403 otherwise) and a security PIN, checked as above; the others run
    /// under the endpoint's own policy.
    /// </summary>
    public static RouteHandlerBuilder RequireForQueryValue(this RouteHandlerBuilder endpoint, string parameter, string value, string policy, string operation) => endpoint
        .WithMetadata(new DestructiveQueryValue(parameter, value, policy, operation))
        .AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            if (!string.Equals(http.Request.Query[parameter].ToString().Trim(), value, StringComparison.OrdinalIgnoreCase)) return await next(context);
            var authorization = http.RequestServices.GetRequiredService<IAuthorizationService>();
            if (!(await authorization.AuthorizeAsync(http.User, policy)).Succeeded)
                throw new ForbiddenException($"'{parameter}={value}' is destructive: only the {policy.ToLowerInvariant()} role may do it, with a security PIN.");
            await UsePinAsync(http, operation);
            return await next(context);
        });

    /// <summary>
    /// For an operation whose destructive variant is chosen by its body (a restore that overwrites): checked as above, the PIN's use
    /// saved with the operation's events.
    /// </summary>
    public static async Task UsePinAsync(HttpContext http, string operation)
    {
        var pin = http.Request.Headers[SecurityPin.Header].ToString().Trim();
        if (pin.Length == 0)
            throw new ForbiddenException($"This operation is destructive: send a security PIN in {SecurityPin.Header} (POST /api/access/security-pin).");
        var mediator = http.RequestServices.GetRequiredService<IMediator>();
        await mediator.Send(new UseSecurityPin(pin, operation), http.RequestAborted);
    }
}

/// <summary>The endpoint's variant with <see cref="Parameter"/>=<see cref="Value"/> needs <see cref="Policy"/> and a security PIN.</summary>
public sealed record DestructiveQueryValue(string Parameter, string Value, string Policy, string Operation);
