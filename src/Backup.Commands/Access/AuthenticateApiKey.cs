using Backup.Commands.Common;
using Marten;
using Mediator;

namespace Backup.Commands.Access;

public sealed record Person(string Name, string Role);

/// <summary>Who holds this key? Null for a malformed, unknown or revoked key.</summary>
public sealed record AuthenticateApiKey(string Key) : IQuery<Person?>;

public sealed class AuthenticateApiKeyHandler(IQuerySession session) : IQueryHandler<AuthenticateApiKey, Person?>
{
    public async ValueTask<Person?> Handle(AuthenticateApiKey query, CancellationToken ct)
    {
        if (!Secrets.TryParse(query.Key, out var keyId, out var secret)) return null;
        var (key, _) = await session.LoadAsync<ApiKey>(keyId, ApiKey.Next, ct);
        return key is not null && key.Accepts(secret) ? new Person(key.Name, key.Role) : null;
    }
}
