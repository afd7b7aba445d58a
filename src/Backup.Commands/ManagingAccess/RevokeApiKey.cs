using Backup.Commands.Access;
using Backup.Commands.Common;
using Marten;
using Mediator;

namespace Backup.Commands.ManagingAccess;

/// <summary>From now on the key is refused (401). Destructive: the API asks for a security PIN first.</summary>
public sealed record RevokeApiKey(Guid KeyId) : ICommand;

public sealed class RevokeApiKeyHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RevokeApiKey>
{
    public async ValueTask<Unit> Handle(RevokeApiKey command, CancellationToken ct)
    {
        var (key, version) = await session.LoadAsync<ApiKey>(command.KeyId, ApiKey.Next, ct);
        session.AppendExpected(command.KeyId, version, ApiKey.Revoke(key, command.KeyId, clock.GetUtcNow()));
        await session.SaveChangesAsync(ct);
        return Unit.Value;
    }
}
