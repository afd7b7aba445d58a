using Backup.Commands.Access;
using Backup.Commands.Common;
using Backup.Commands.ManagingAccess;
using Mediator;

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
            var pin = context.HttpContext.Request.Headers[SecurityPin.Header].ToString().Trim();
            if (pin.Length == 0)
                throw new ForbiddenException($"This operation is destructive: send a security PIN in {SecurityPin.Header} (POST /api/access/security-pin).");
            var mediator = context.HttpContext.RequestServices.GetRequiredService<IMediator>();
            await mediator.Send(new UseSecurityPin(pin, operation), context.HttpContext.RequestAborted);
            return await next(context);
        });
}
