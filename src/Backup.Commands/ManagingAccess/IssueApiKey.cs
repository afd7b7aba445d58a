using Backup.Commands.Access;
using Backup.Commands.Common;
using Backup.Commands.Uniqueness;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.ManagingAccess;

public sealed record ApiKeyIssuedResult(Guid KeyId, string Name, string Role, string Key);

/// <summary>An admin gives a person a key with one role; the key is shown once and only its hash is stored.</summary>
public sealed record IssueApiKey(string Name, string Role) : ICommand<ApiKeyIssuedResult>;

public sealed class IssueApiKeyValidator : AbstractValidator<IssueApiKey>
{
    public IssueApiKeyValidator()
    {
        RuleFor(x => x.Name).NotEmpty().Must(n => n.Trim().Length > 0).WithMessage("'Name' must not be blank.").MaximumLength(100);
        RuleFor(x => x.Role).Must(r => Roles.ForPeople.Contains(r))
            .WithMessage($"'Role' must be one of {string.Join(", ", Roles.ForPeople)}.");
    }
}

public sealed class IssueApiKeyHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<IssueApiKey, ApiKeyIssuedResult>
{
    public async ValueTask<ApiKeyIssuedResult> Handle(IssueApiKey command, CancellationToken ct)
    {
        var name = command.Name.Trim();
        var key = ApiKeyName.KeyOf(name);
        if (key == ApiKeyName.KeyOf(ApiKey.BootstrapName) || await session.Query<ApiKeyName>().AnyAsync(n => n.NameKey == key, ct))
            throw new ConflictException($"An API key named '{name}' already exists.");
        var keyId = Guid.CreateVersion7();
        var secret = Secrets.NewSecret();
        var issued = ApiKey.Issue(keyId, name, command.Role, Secrets.Hash(secret), clock.GetUtcNow());
        session.Events.StartStream<ApiKey>(keyId, issued);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (e.IsUniqueViolation())
        {
            // Lost a race with another request for the same name (unique index on ApiKeyName.NameKey).
            throw new ConflictException($"An API key named '{name}' already exists.");
        }
        return new ApiKeyIssuedResult(keyId, issued.Name, issued.Role, Secrets.Compose(keyId, secret));
    }
}
