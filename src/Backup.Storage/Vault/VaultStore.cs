using System.Text.Json;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Backup.Storage.Disk;
using Backup.Storage.Format;

namespace Backup.Storage.Vault;

/// <summary>
/// The online vault: one Azure Blob container holding packs/&lt;pack id&gt; and manifests/&lt;recovery point&gt;.json,
/// the same names as on disk, so a copy is resumable by asking which blobs are already there.
/// </summary>
public sealed class VaultStore(BlobContainerClient container)
{
    public BlobContainerClient Container => container;

    public Task EnsureCreatedAsync(CancellationToken ct) => container.CreateIfNotExistsAsync(cancellationToken: ct);

    private BlobClient PackBlob(string packId)
    {
        if (!PackId.IsValid(packId)) throw new ArgumentException($"'{packId}' is not a pack id.", nameof(packId));
        return container.GetBlobClient($"packs/{packId}");
    }

    private BlobClient ManifestBlob(Guid recoveryPointId) => container.GetBlobClient($"manifests/{recoveryPointId:N}.json");

    /// <summary>The stored length of a pack, or null when the vault does not hold it.</summary>
    public async Task<long?> PackLengthAsync(string packId, CancellationToken ct)
    {
        try
        {
            var props = await PackBlob(packId).GetPropertiesAsync(cancellationToken: ct);
            return props.Value.ContentLength;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>Every pack blob in the vault with its length and last modification.</summary>
    public async IAsyncEnumerable<StoredPackFile> ListPacksAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "packs/", ct))
        {
            var id = blob.Name["packs/".Length..];
            if (PackId.IsValid(id))
                yield return new StoredPackFile(id, blob.Properties.ContentLength ?? 0, blob.Properties.LastModified ?? DateTimeOffset.MinValue);
        }
    }

    /// <summary>Deletes a pack blob; false when it was not there.</summary>
    public async Task<bool> DeletePackAsync(string packId, CancellationToken ct) =>
        (await PackBlob(packId).DeleteIfExistsAsync(cancellationToken: ct)).Value;

    public async Task<bool> DeleteManifestAsync(Guid recoveryPointId, CancellationToken ct) =>
        (await ManifestBlob(recoveryPointId).DeleteIfExistsAsync(cancellationToken: ct)).Value;

    public async Task UploadPackAsync(string packId, Stream content, CancellationToken ct) =>
        await PackBlob(packId).UploadAsync(content, new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream" },
            TransferOptions = new Azure.Storage.StorageTransferOptions { MaximumTransferSize = 8 << 20, InitialTransferSize = 8 << 20 },
        }, ct);

    public async Task<Stream> OpenPackAsync(string packId, CancellationToken ct) =>
        await PackBlob(packId).OpenReadAsync(new BlobOpenReadOptions(allowModifications: false), ct);

    /// <summary>A pack's bytes as they download, or null when the vault does not hold it (opening reads its properties).</summary>
    public async Task<Stream?> TryOpenPackAsync(string packId, CancellationToken ct)
    {
        try
        {
            return await OpenPackAsync(packId, ct);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// Publishes the audit chain's head outside the database: one blob per anchor, never overwritten (a second writer of
    /// the same head finds it there). With an immutability policy on the container, not even the vault's owner can edit it.
    /// </summary>
    public async Task AnchorAuditHeadAsync(AuditAnchor anchor, CancellationToken ct)
    {
        try
        {
            await container.GetBlobClient($"audit/anchors/{anchor.Sequence:D20}.json").UploadAsync(
                BinaryData.FromBytes(JsonSerializer.SerializeToUtf8Bytes(anchor, Contracts.DocumentJson.Default.AuditAnchor)), new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, ct);
        }
        catch (RequestFailedException e) when (e.Status is 409 or 412)
        {
            // Anchored already.
        }
    }

    /// <summary>Every anchored head, oldest first.</summary>
    public async Task<List<AuditAnchor>> AuditAnchorsAsync(CancellationToken ct)
    {
        var anchors = new List<AuditAnchor>();
        try
        {
            await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, "audit/anchors/", ct))
            {
                var content = await container.GetBlobClient(blob.Name).DownloadContentAsync(ct);
                if (JsonSerializer.Deserialize(content.Value.Content.ToMemory().Span, Contracts.DocumentJson.Default.AuditAnchor) is { } anchor) anchors.Add(anchor);
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            // No vault container yet: nothing was anchored.
        }
        return [.. anchors.OrderBy(a => a.Sequence)];
    }

    public async Task UploadManifestAsync(Guid recoveryPointId, byte[] manifest, CancellationToken ct) =>
        await ManifestBlob(recoveryPointId).UploadAsync(new BinaryData(manifest), overwrite: true, ct);

    public async Task<byte[]?> ReadManifestAsync(Guid recoveryPointId, CancellationToken ct)
    {
        try
        {
            var result = await ManifestBlob(recoveryPointId).DownloadContentAsync(ct);
            return result.Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    private BlobClient KeyFileBlob => container.GetBlobClient("keys/repository.json");

    /// <summary>The repository's key file (wrapped master keys), so another server can restore from the vault with the passphrase alone.</summary>
    public async Task UploadKeyFileAsync(byte[] keyFile, CancellationToken ct) =>
        await KeyFileBlob.UploadAsync(new BinaryData(keyFile), overwrite: true, ct);

    public async Task<byte[]?> ReadKeyFileAsync(CancellationToken ct)
    {
        try
        {
            return (await KeyFileBlob.DownloadContentAsync(ct)).Value.Content.ToArray();
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <summary>
    /// A pack's own index (its trailer), read with ranged requests rather than by downloading the pack: how a server
    /// that has only the vault rebuilds where each chunk is.
    /// </summary>
    public async Task<IReadOnlyList<PackEntry>> ReadPackIndexAsync(string packId, CancellationToken ct)
    {
        await using var stream = await PackBlob(packId).OpenReadAsync(new BlobOpenReadOptions(allowModifications: false) { BufferSize = 64 * 1024 }, ct);
        try
        {
            return Pack.ReadIndex(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Pack {packId} in the vault is not a valid pack: {e.Message}", e);
        }
    }
}

/// <summary>The audit chain's head at one moment: the last chained event's sequence and link hash.</summary>
public sealed record AuditAnchor(long Sequence, string Hash, DateTimeOffset AnchoredAt);
