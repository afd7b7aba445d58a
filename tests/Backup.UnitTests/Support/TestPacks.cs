using System.Security.Cryptography;
using Backup.Storage.Crypto;
using Backup.Storage.Format;

namespace Backup.UnitTests.Support;

/// <summary>Well-formed version 2 packs of arbitrary blobs, for code that reads packs without opening their blobs.</summary>
internal static class TestPacks
{
    /// <summary>Builds a pack of <paramref name="blobs"/> (each filed under the SHA-256 of its bytes) and returns its bytes.</summary>
    public static async Task<(string Id, byte[] Bytes, IReadOnlyList<PackEntry> Entries)> BuildAsync(string folder, IEnumerable<byte[]> blobs, CancellationToken ct)
    {
        var path = Path.Combine(folder, $"test-pack-{Guid.NewGuid():N}");
        try
        {
            await using var builder = new PackBuilder(path);
            foreach (var blob in blobs) builder.Add(new ChunkId(SHA256.HashData(blob)), blob, blob.Length - Pack.MinBlobLength);
            var (id, _) = await builder.FinishAsync(ct);
            return (id, await File.ReadAllBytesAsync(path, ct), builder.Entries.ToList());
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static Task<(string Id, byte[] Bytes, IReadOnlyList<PackEntry> Entries)> RandomAsync(string folder, int blobs, int blobLength, CancellationToken ct) =>
        BuildAsync(folder, Enumerable.Range(0, blobs).Select(_ => RandomNumberGenerator.GetBytes(blobLength)), ct);
}
