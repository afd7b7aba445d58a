using Backup.Commands.Common;
using Marten;
using Mediator;

namespace Backup.Commands.Access;

/// <summary>From now on the key is refused (401). Destructive: the API asks for a security PIN first.</summary>
public sealed record RevokeApiKey(Guid KeyId) : ICommand;

public sealed class RevokeApiKeyHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RevokeApiKey>
{
    public async ValueTask<Unit> Handle(RevokeApiKey command, CancellationToken ct)
    {
        var (key, version) = await session.LoadAsync<ApiKey>(command.KeyId, ApiKey.Next, ct);
        session.AppendExpected(command.KeyId, version, ApiKey.Revoke(key, command.KeyId, clock.GetUtcNow()));
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            // The key's stream or the security PIN's (staged in this session by the PIN filter) moved under us.
            throw new ConflictException("Another request revoked this key or spent this security PIN at the same time; nothing was done.");
        }
        return Unit.Value;
    }
}
