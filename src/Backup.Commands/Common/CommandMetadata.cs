using Marten;

namespace Backup.Commands.Common;

/// <summary>
/// Where the command being handled came from: stamped on every event it appends as Marten's correlation and causation
/// ids and an "actor" header. The host fills it (the API from the HTTP request); the domain only passes it on to
/// sessions it opens itself, and knows nothing of the transport.
/// </summary>
public sealed class CommandMetadata
{
    public const string ActorHeader = "actor";

    public string? CorrelationId { get; set; }
    public string? CausationId { get; set; }
    public string? Actor { get; set; }

    public IDocumentSession ApplyTo(IDocumentSession session)
    {
        if (CorrelationId is not null) session.CorrelationId = CorrelationId;
        if (CausationId is not null) session.CausationId = CausationId;
        if (Actor is not null) session.SetHeader(ActorHeader, Actor);
        return session;
    }
}
