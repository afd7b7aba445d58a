using System.Diagnostics;
using Backup.Commands.Common;
using Marten;
using Mediator;

namespace Backup.Api.Infrastructure;

/// <summary>
/// The correlation id of a request: the caller's X-Correlation-Id when it sent a sane one, else the request's W3C trace
/// id. Echoed on the response so a client can find its events in the audit trail.
/// </summary>
public static class Correlation
{
    public const string Header = "X-Correlation-Id";
    private const string ItemKey = "correlation-id";
    private const int MaxLength = 128;

    public static IApplicationBuilder UseCorrelationId(this IApplicationBuilder app) => app.Use(async (http, next) =>
    {
        var incoming = http.Request.Headers[Header].ToString();
        var id = IsSane(incoming) ? incoming : Activity.Current?.TraceId.ToHexString() ?? http.TraceIdentifier;
        http.Items[ItemKey] = id;
        http.Response.Headers[Header] = id;
        await next(http);
    });

    public static string? CorrelationId(this HttpContext http) => http.Items[ItemKey] as string;

    private static bool IsSane(string value) =>
        value.Length is > 0 and <= MaxLength && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');
}

/// <summary>
/// Stamps every command's events with where they came from: correlation = the HTTP request, causation = the command
/// type, header "actor" = who sent it. It fills the request's <see cref="CommandMetadata"/> and applies it to the
/// request's scoped Marten session, the one command handlers are given; handlers that open their own sessions apply
/// the same metadata. The domain stays unaware of HTTP.
/// </summary>
public sealed class AuditMetadataBehavior<TMessage, TResponse>(IHttpContextAccessor accessor, CommandMetadata metadata, IServiceProvider services)
    : IPipelineBehavior<TMessage, TResponse>
    where TMessage : notnull, IMessage
{
    public ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        if (message is IBaseCommand && accessor.HttpContext is { } http)
        {
            metadata.CorrelationId = http.CorrelationId() ?? http.TraceIdentifier;
            metadata.CausationId = typeof(TMessage).Name;
            metadata.Actor = http.User.Actor();
            // Resolved only for commands: a query has no session to stamp.
            metadata.ApplyTo(services.GetRequiredService<IDocumentSession>());
        }
        return next(message, cancellationToken);
    }
}
