using System.Security.Cryptography;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Repository;
using Backup.Commands.Restores;
using Backup.Storage.Checking;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;
using Marten;

namespace Backup.Commands.Stores;

// The storage the commands work on, as small interfaces the handlers take (their tests and hosts choose the
// implementation); the implementations below are the server's disk store and vault (Backup.Storage).

/// <summary>The packs on the backup server's disk, as an agent's uploads and commits need them.</summary>
public interface IDiskPacks
{
    /// <summary>Streams an uploaded pack into the store, verified (SHA-256 = <paramref name="packId"/>, a well-formed pack); nothing is kept otherwise.</summary>
    /// <exception cref="InvalidDataException">The bytes are not the pack claimed.</exception>
    Task<(PackStored Stored, PackOnDisk Pack)> PutAsync(string packId, Stream content, CancellationToken ct);

    /// <summary>The bytes the packs occupy on disk; refuses (422) when one of them is not there.</summary>
    long MeasurePresent(IReadOnlyCollection<string> packIds, string what);
}

/// <summary>Manifests of recovery points (tree and packs) on the server's disk.</summary>
public interface IManifests
{
    Task<StoredManifest> PutAsync(Guid recoveryPointId, IReadOnlyList<string> tree, IReadOnlyList<string> packIds, CancellationToken ct);
}

/// <summary>The repository's key file, kept on the server's disk and in the vault.</summary>
public interface IKeyFiles
{
    /// <summary>Wraps fresh master keys under the passphrase and stores the key file; 409 when one exists on disk.</summary>
    Task<KeyFileWritten> CreateAsync(string passphrase, CancellationToken ct);

    /// <summary>Re-wraps the master keys under a new passphrase (422 when the current one is wrong, nothing changed).</summary>
    Task<KeyFileWritten> RewrapAsync(string currentPassphrase, string newPassphrase, CancellationToken ct);
}

/// <summary>Reads a recovery point's packs back from one tier and checks them against their ids and the chunk index.</summary>
public interface ICopyChecker
{
    Task<CheckOutcome> CheckAsync(IQuerySession session, StorageTier tier, IReadOnlyList<string> packIds, CancellationToken ct);
}

/// <summary>What a running restore reads, from the tier it asked for, or from the other one where that tier lost its copy.</summary>
public interface IRestoreReads
{
    Task<byte[]> ReadManifestAsync(RestoreAccess access, CancellationToken ct);
    /// <summary>A pack of the point being restored: from the restore's tier, or from <paramref name="tier"/> when the agent asks for that copy.</summary>
    Task<Stream> OpenPackAsync(RestoreAccess access, string packId, StorageTier? tier, CancellationToken ct);
}

public sealed class ServerRestoreReads(DiskStore disk, VaultStore vault) : IRestoreReads
{
    /// <summary>The problem code of a 409 for a pack (or manifest) that neither the server's disk nor the vault holds.</summary>
    public const string MissingCode = "restore-data-missing";

    public async Task<byte[]> ReadManifestAsync(RestoreAccess access, CancellationToken ct)
    {
        if (access.Source == StorageTier.Disk && disk.HasManifest(access.RecoveryPointId)) return await disk.ReadManifestAsync(access.RecoveryPointId, ct);
        return await vault.ReadManifestAsync(access.RecoveryPointId, ct)
            ?? throw new ConflictException($"The manifest of recovery point {access.RecoveryPointId} is on neither the server's disk nor the vault.", MissingCode);
    }

    /// <summary>
    /// A restore from disk whose pack file is gone (deleted, or lost with its disk) reads the vault's copy instead, and so does an
    /// agent that found the disk's copy damaged and asks for the vault's: the agent checks every chunk against its id either
    /// way, so the tier that served it does not matter to the result.
    /// </summary>
    public async Task<Stream> OpenPackAsync(RestoreAccess access, string packId, StorageTier? tier, CancellationToken ct)
    {
        var from = tier ?? access.Source;
        if (from == StorageTier.Disk && disk.HasPack(packId)) return disk.OpenPack(packId);
        // One request to the vault, not a lookup before the read: a vault restore opens every pack this way.
        if (await vault.TryOpenPackAsync(packId, ct) is { } copy) return copy;
        var where = from == StorageTier.Disk ? "missing from the server's disk, and the vault holds no copy" : "missing from the vault";
        throw new ConflictException($"Pack {packId} of recovery point {access.RecoveryPointId} is {where}; nothing can be read from it.", MissingCode);
    }
}

public sealed class ServerDiskPacks(DiskStore disk, long maxPackBytes) : IDiskPacks, IManifests
{
    public async Task<(PackStored Stored, PackOnDisk Pack)> PutAsync(string packId, Stream content, CancellationToken ct)
    {
        var (stored, entries) = await disk.PutPackAsync(packId, content, maxPackBytes, ct);
        return (stored, new PackOnDisk(stored.Bytes, entries.Select(e => new StoredChunk
        {
            Id = e.Id.ToString(), PackId = packId, Offset = e.Offset, Length = e.Length, PlainLength = e.PlainLength, PlainOffset = e.PlainOffset,
        }).ToList()));
    }

    public long MeasurePresent(IReadOnlyCollection<string> packIds, string what)
    {
        var missing = packIds.Where(p => !disk.HasPack(p)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{missing.Count} pack(s) holding the {what} chunks are not on the server's disk, e.g. {missing[0]}.");
        return packIds.Sum(disk.PackLength);
    }

    public async Task<StoredManifest> PutAsync(Guid recoveryPointId, IReadOnlyList<string> tree, IReadOnlyList<string> packIds, CancellationToken ct)
    {
        var packBytes = MeasurePresent(packIds, "backup's");
        var bytes = new Manifest(Manifest.CurrentVersion, recoveryPointId, tree, packIds).ToBytes();
        await disk.PutManifestAsync(recoveryPointId, bytes, ct);
        return new StoredManifest(Convert.ToHexStringLower(SHA256.HashData(bytes)), packBytes + bytes.Length);
    }
}

public sealed class ServerKeyFiles(DiskStore disk, VaultStore vault) : IKeyFiles
{
    public async Task<KeyFileWritten> CreateAsync(string passphrase, CancellationToken ct)
    {
        var file = KeyFile.Create(passphrase, out var keys);
        keys.Dispose();
        var bytes = file.ToJsonBytes();
        if (!await disk.TryCreateKeyFileAsync(bytes, ct))
            throw new ConflictException("The repository already has a key file on disk.");
        await vault.UploadKeyFileAsync(bytes, ct);
        return Written(file, bytes);
    }

    public async Task<KeyFileWritten> RewrapAsync(string currentPassphrase, string newPassphrase, CancellationToken ct)
    {
        var current = await disk.ReadKeyFileAsync(ct) ?? throw new NotFoundException("Repository key file", RepositoryKey.StreamId);
        KeyFile rewrapped;
        try
        {
            rewrapped = KeyFile.FromJson(current).Rewrap(currentPassphrase, newPassphrase);
        }
        catch (WrongPassphraseException)
        {
            throw new UnprocessableException("The current passphrase is wrong; nothing was changed.");
        }
        var bytes = rewrapped.ToJsonBytes();
        // Vault first: if it is unreachable, nothing has changed anywhere and the old passphrase still works.
        await vault.UploadKeyFileAsync(bytes, ct);
        await disk.ReplaceKeyFileAsync(bytes, ct);
        return Written(rewrapped, bytes);
    }

    private static KeyFileWritten Written(KeyFile file, byte[] bytes) =>
        new(Convert.ToHexStringLower(SHA256.HashData(bytes)), file.Kdf.Algorithm, (int)file.Kdf.MemoryKiB, (int)file.Kdf.Passes);
}

public sealed class ServerCopyChecker(DiskStore disk, VaultStore vault) : ICopyChecker
{
    public async Task<CheckOutcome> CheckAsync(IQuerySession session, StorageTier tier, IReadOnlyList<string> packIds, CancellationToken ct)
    {
        var indexed = (await session.InPacksAsync(packIds, ct)).ToLookup(c => c.PackId, StringComparer.Ordinal);
        var result = tier == StorageTier.Disk
            ? await TierCheck.DiskAsync(disk, packIds, indexed, ct)
            : await TierCheck.VaultAsync(vault, packIds, indexed, ct);
        return new CheckOutcome(result.PacksChecked, result.BytesChecked, [.. result.Damaged.Select(d => new DamagedPack(d.PackId, d.Problem))]);
    }
}
