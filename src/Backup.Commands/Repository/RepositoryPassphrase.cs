using System.Globalization;
using System.Text;
using Backup.Commands.Common;
using Backup.Commands.Stores;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Repository;

/// <summary>The result of writing a key file: its hash and the cost of its key derivation (for the event).</summary>
public sealed record KeyFileWritten(string Sha256, string Kdf, int MemoryKiB, int Passes);

/// <summary>
/// An administrator sets the passphrase that protects the repository's new master keys: the key-encryption key is derived,
/// fresh master keys wrapped and the key file stored on disk and in the vault (<see cref="IKeyFiles"/>), only after the
/// repository is known to have no key. The passphrase is never logged: <see cref="ToString"/> hides it.
/// </summary>
public sealed record CreateRepositoryKey(string Passphrase) : ICommand<KeyFileWritten>
{
    public override string ToString() => "CreateRepositoryKey { Passphrase = (hidden) }";
}

/// <summary>
/// An administrator changes the passphrase: the key file is unwrapped with the current passphrase (a wrong one fails with
/// nothing changed) and stored wrapped under the new one; no stored blob is rewritten.
/// </summary>
public sealed record ChangeRepositoryPassphrase(string CurrentPassphrase, string NewPassphrase) : ICommand<KeyFileWritten>
{
    public override string ToString() => "ChangeRepositoryPassphrase { passphrases hidden }";
}

public static class PassphraseRules
{
    /// <summary>Azure Backup's rule: at least 16 characters (Unicode scalar values after NFC), not only white space.</summary>
    public const int MinLength = 16;

    public static bool IsAcceptable(string? passphrase) =>
        passphrase is not null && !string.IsNullOrWhiteSpace(passphrase)
        && passphrase.Normalize(NormalizationForm.FormC).EnumerateRunes().Count() >= MinLength;

    public static IRuleBuilderOptions<T, string> Passphrase<T>(this IRuleBuilder<T, string> rule) =>
        rule.Must(IsAcceptable).WithMessage(string.Create(CultureInfo.InvariantCulture,
            $"'{{PropertyName}}' must have at least {MinLength} characters and not be only white space."));
}

public sealed class CreateRepositoryKeyValidator : AbstractValidator<CreateRepositoryKey>
{
    public CreateRepositoryKeyValidator() => RuleFor(x => x.Passphrase).Passphrase();
}

public sealed class ChangeRepositoryPassphraseValidator : AbstractValidator<ChangeRepositoryPassphrase>
{
    public ChangeRepositoryPassphraseValidator()
    {
        RuleFor(x => x.CurrentPassphrase).NotEmpty();
        RuleFor(x => x.NewPassphrase).Passphrase()
            .NotEqual(x => x.CurrentPassphrase).WithMessage("'New Passphrase' must differ from the current one.");
    }
}

public sealed class CreateRepositoryKeyHandler(IDocumentSession session, TimeProvider clock, IKeyFiles keys) : ICommandHandler<CreateRepositoryKey, KeyFileWritten>
{
    public async ValueTask<KeyFileWritten> Handle(CreateRepositoryKey command, CancellationToken ct)
    {
        var (state, _) = await session.LoadAsync<RepositoryKey>(RepositoryKey.StreamId, RepositoryKey.Next, ct);
        RepositoryKey.EnsureAbsent(state);
        var written = await keys.CreateAsync(command.Passphrase, ct);
        session.Events.StartStream<RepositoryKey>(RepositoryKey.StreamId,
            RepositoryKey.Create(state, written.Sha256, written.Kdf, written.MemoryKiB, written.Passes, clock.GetUtcNow()));
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Marten.Exceptions.ExistingStreamIdCollisionException)
        {
            throw new ConflictException("The repository key was created by another request at the same time.");
        }
        return written;
    }
}

public sealed class ChangeRepositoryPassphraseHandler(IDocumentSession session, TimeProvider clock, IKeyFiles keys)
    : ICommandHandler<ChangeRepositoryPassphrase, KeyFileWritten>
{
    public async ValueTask<KeyFileWritten> Handle(ChangeRepositoryPassphrase command, CancellationToken ct)
    {
        var (state, version) = await session.LoadAsync<RepositoryKey>(RepositoryKey.StreamId, RepositoryKey.Next, ct);
        RepositoryKey.Existing(state);
        var written = await keys.RewrapAsync(command.CurrentPassphrase, command.NewPassphrase, ct);
        session.AppendExpected(RepositoryKey.StreamId, version, RepositoryKey.ChangePassphrase(state, written.Sha256, clock.GetUtcNow()));
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException("The passphrase was changed by another request at the same time; check which one holds.");
        }
        return written;
    }
}
