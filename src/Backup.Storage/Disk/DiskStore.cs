using System.Security.Cryptography;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.Storage.Disk;

/// <summary>
/// The backup server's local disk store: packs/&lt;2 hex&gt;/&lt;pack id&gt; and manifests/&lt;recovery point&gt;.json.
/// Writes go to tmp/ first and are renamed into place only after the content has been verified, so a crash
/// or a lying client never leaves a pack under a name that does not match its bytes.
/// </summary>
public sealed class DiskStore
{
    private readonly string _root;

    public DiskStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(Path.Combine(_root, "packs"));
        Directory.CreateDirectory(Path.Combine(_root, "manifests"));
        Directory.CreateDirectory(Path.Combine(_root, "tmp"));
        Directory.CreateDirectory(Path.Combine(_root, "keys"));
    }

    public string KeyFilePath => Path.Combine(_root, "keys", "repository.json");

    /// <summary>Stores the first key file; false when one already exists (it is never overwritten this way).</summary>
    public async Task<bool> TryCreateKeyFileAsync(byte[] keyFile, CancellationToken ct)
    {
        var tmp = Path.Combine(_root, "tmp", $"key.{Guid.NewGuid():N}.json");
        await File.WriteAllBytesAsync(tmp, keyFile, ct);
        try
        {
            File.Move(tmp, KeyFilePath, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(KeyFilePath))
        {
            return false;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Replaces the key file (after a passphrase change) by writing a new file and renaming it over the old one.</summary>
    public async Task ReplaceKeyFileAsync(byte[] keyFile, CancellationToken ct)
    {
        var tmp = Path.Combine(_root, "tmp", $"key.{Guid.NewGuid():N}.json");
        await File.WriteAllBytesAsync(tmp, keyFile, ct);
        File.Move(tmp, KeyFilePath, overwrite: true);
    }

    public async Task<byte[]?> ReadKeyFileAsync(CancellationToken ct) =>
        File.Exists(KeyFilePath) ? await File.ReadAllBytesAsync(KeyFilePath, ct) : null;

    public string Root => _root;

    public string PackPath(string packId)
    {
        if (!PackId.IsValid(packId)) throw new ArgumentException($"'{packId}' is not a pack id.", nameof(packId));
        return Path.Combine(_root, "packs", packId[..2], packId);
    }

    public string ManifestPath(Guid recoveryPointId) => Path.Combine(_root, "manifests", $"{recoveryPointId:N}.json");

    public bool HasPack(string packId) => File.Exists(PackPath(packId));

    public long PackLength(string packId) => new FileInfo(PackPath(packId)).Length;

    /// <summary>
    /// Streams a pack into the store, verifying that its SHA-256 is <paramref name="packId"/> and that it is a well-formed
    /// version 2 pack; returns what it holds (read from its trailer).
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes do not hash to the claimed id or are not a valid pack; nothing is kept.</exception>
    public Task<(PackStored Stored, IReadOnlyList<PackEntry> Entries)> PutPackAsync(string packId, Stream content, long maxBytes, CancellationToken ct) =>
        WritePackAsync(packId, content, maxBytes, replace: false, ct);

    /// <summary>
    /// Rewrites a pack (a repair): the new bytes are verified like an upload and only then renamed over the damaged or
    /// missing copy.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes do not hash to the id or are not a valid pack; the old file is left as it was.</exception>
    public Task ReplacePackAsync(string packId, Stream content, long maxBytes, CancellationToken ct) =>
        WritePackAsync(packId, content, maxBytes, replace: true, ct);

    private async Task<(PackStored Stored, IReadOnlyList<PackEntry> Entries)> WritePackAsync(string packId, Stream content, long maxBytes, bool replace, CancellationToken ct)
    {
        var final = PackPath(packId);
        var tmp = Path.Combine(_root, "tmp", $"{packId}.{Guid.NewGuid():N}");
        long written = 0;
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
            {
                // A pooled buffer: a fresh megabyte per upload lands on the large object heap and brings on full collections.
                var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
                try
                {
                    int read;
                    while ((read = await content.ReadAsync(buffer, ct)) > 0)
                    {
                        written += read;
                        if (written > maxBytes) throw new InvalidDataException($"Pack {packId} exceeds the limit of {maxBytes} bytes.");
                        hash.AppendData(buffer, 0, read);
                        await file.WriteAsync(buffer.AsMemory(0, read), ct);
                    }
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
                await file.FlushAsync(ct);
                file.Flush(flushToDisk: true);
            }
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (!string.Equals(actual, packId, StringComparison.Ordinal))
                throw new InvalidDataException($"Pack content hashes to {actual}, not to its name {packId}.");
            IReadOnlyList<PackEntry> entries;
            try
            {
                entries = Pack.ReadIndex(tmp);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"Pack {packId} is not a valid pack: {e.Message}", e);
            }
            Directory.CreateDirectory(Path.GetDirectoryName(final)!);
            if (!replace && File.Exists(final)) return (new PackStored(packId, written, AlreadyPresent: true), entries);
            File.Move(tmp, final, overwrite: replace);
            return (new PackStored(packId, written, AlreadyPresent: false), entries);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Every pack file in the store with its length and last write (packs/&lt;2 hex&gt;/&lt;id&gt;; anything else is ignored).</summary>
    public IEnumerable<StoredPackFile> ListPacks()
    {
        foreach (var directory in Directory.EnumerateDirectories(Path.Combine(_root, "packs")))
            foreach (var file in new DirectoryInfo(directory).EnumerateFiles())
                if (PackId.IsValid(file.Name) && file.Name.StartsWith(Path.GetFileName(directory), StringComparison.Ordinal))
                    yield return new StoredPackFile(file.Name, file.Length, new DateTimeOffset(file.LastWriteTimeUtc, TimeSpan.Zero));
    }

    /// <summary>Deletes a pack; false when it was not there.</summary>
    public bool DeletePack(string packId)
    {
        var path = PackPath(packId);
        if (!File.Exists(path)) return false;
        File.Delete(path);
        return true;
    }

    public bool DeleteManifest(Guid recoveryPointId)
    {
        var path = ManifestPath(recoveryPointId);
        if (!File.Exists(path)) return false;
        File.Delete(path);
        return true;
    }

    public Stream OpenPack(string packId) =>
        new FileStream(PackPath(packId), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);

    public async Task PutManifestAsync(Guid recoveryPointId, byte[] manifest, CancellationToken ct)
    {
        var tmp = Path.Combine(_root, "tmp", $"{recoveryPointId:N}.{Guid.NewGuid():N}.json");
        await File.WriteAllBytesAsync(tmp, manifest, ct);
        File.Move(tmp, ManifestPath(recoveryPointId), overwrite: true);
    }

    public bool HasManifest(Guid recoveryPointId) => File.Exists(ManifestPath(recoveryPointId));

    public Task<byte[]> ReadManifestAsync(Guid recoveryPointId, CancellationToken ct) =>
        File.ReadAllBytesAsync(ManifestPath(recoveryPointId), ct);
}

/// <summary>A pack file as the store lists it.</summary>
public sealed record StoredPackFile(string PackId, long Bytes, DateTimeOffset WrittenAt);
