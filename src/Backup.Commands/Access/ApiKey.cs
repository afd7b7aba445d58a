using Backup.Commands.Common;

namespace Backup.Commands.Access;

/// <summary>What a person may do. Agents are not issued keys: they enrol and act only as themselves.</summary>
public static class Roles
{
    public const string Admin = "admin";
    public const string Operator = "operator";
    public const string Auditor = "auditor";

    public static readonly IReadOnlyList<string> ForPeople = [Admin, Operator, Auditor];
}

public sealed record ApiKeyIssued(Guid KeyId, string Name, string Role, string SecretHash, DateTimeOffset IssuedAt);

public sealed record ApiKeyRevoked(Guid KeyId, DateTimeOffset RevokedAt);

public sealed record ApiKey(Guid Id, string Name, string Role, string SecretHash, DateTimeOffset? RevokedAt)
{
    /// <summary>The bootstrap key from configuration acts under this name; no issued key may take it.</summary>
    public const string BootstrapName = "bootstrap-admin";

    public static ApiKey? Next(ApiKey? state, object @event) => @event switch
    {
        ApiKeyIssued e => new ApiKey(e.KeyId, e.Name, e.Role, e.SecretHash, null),
        ApiKeyRevoked e when state is not null => state with { RevokedAt = e.RevokedAt },
        _ => state,
    };

    public static ApiKeyIssued Issue(Guid keyId, string name, string role, string secretHash, DateTimeOffset now) =>
        new(keyId, name.Trim(), role, secretHash, now);

    public static ApiKeyRevoked Revoke(ApiKey? key, Guid keyId, DateTimeOffset now)
    {
        if (key is null) throw new NotFoundException("API key", keyId);
        if (key.RevokedAt is not null) throw new ConflictException($"The API key '{key.Name}' is already revoked.");
        return new ApiKeyRevoked(key.Id, now);
    }

    /// <summary>A key authenticates while it is not revoked and the secret matches.</summary>
    public bool Accepts(string presentedSecret) => RevokedAt is null && Secrets.Matches(presentedSecret, SecretHash);
}
