using Backup.Commands.Common;

namespace Backup.Commands.Repository;

/// <summary>
/// The repository's master keys were generated and stored wrapped under a passphrase (the key file, on the server's
/// disk and in the vault). Neither the passphrase nor the keys are in the event: only the key file's hash and cost.
/// </summary>
public sealed record RepositoryKeyCreated(Guid RepositoryId, string KeyFileSha256, string Kdf, int MemoryKiB, int Passes, DateTimeOffset CreatedAt);

/// <summary>The key file was re-wrapped under a new passphrase; the master keys, and so every stored blob, are unchanged.</summary>
public sealed record RepositoryPassphraseChanged(Guid RepositoryId, string KeyFileSha256, DateTimeOffset ChangedAt);

/// <summary>The backup server's one repository key (decider).</summary>
public sealed record RepositoryKey(Guid Id, string KeyFileSha256, int PassphraseChanges)
{
    /// <summary>One repository per backup server: its stream id is fixed.</summary>
    public static readonly Guid StreamId = DeterministicGuid.Create("backup.repository.key");

    public static RepositoryKey? Next(RepositoryKey? state, object @event) => @event switch
    {
        RepositoryKeyCreated e => new RepositoryKey(e.RepositoryId, e.KeyFileSha256, 0),
        RepositoryPassphraseChanged e when state is not null => state with { KeyFileSha256 = e.KeyFileSha256, PassphraseChanges = state.PassphraseChanges + 1 },
        _ => state,
    };

    public static void EnsureAbsent(RepositoryKey? state)
    {
        if (state is not null) throw new ConflictException("The repository already has a key. Change its passphrase instead; a new key would orphan every stored recovery point.");
    }

    public static RepositoryKeyCreated Create(RepositoryKey? state, string keyFileSha256, string kdf, int memoryKiB, int passes, DateTimeOffset now)
    {
        EnsureAbsent(state);
        return new RepositoryKeyCreated(StreamId, keyFileSha256, kdf, memoryKiB, passes, now);
    }

    public static RepositoryKey Existing(RepositoryKey? state) =>
        state ?? throw new NotFoundException("Repository key", StreamId);

    public static RepositoryPassphraseChanged ChangePassphrase(RepositoryKey? state, string keyFileSha256, DateTimeOffset now) =>
        new(Existing(state).Id, keyFileSha256, now);
}
