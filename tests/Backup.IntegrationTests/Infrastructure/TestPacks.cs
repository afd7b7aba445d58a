using System.Security.Cryptography;
using Backup.Storage.Blobs;
using Backup.Storage.Crypto;
using Backup.Storage.Format;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>A real version 2 pack, built with the product's own PackBuilder and BlobEnvelope, for tests that speak the agent protocol by hand.</summary>
public sealed record TestPack(string Id, byte[] Bytes, IReadOnlyList<ChunkId> Chunks);

public static class TestPacks
{
    public static readonly MasterKeys Keys = MasterKeys.Generate();

    /// <summary>Seals each of <paramref name="chunks"/> as one blob of a new pack.</summary>
    public static TestPack Build(params byte[][] chunks)
    {
        var path = Path.Combine(Path.GetTempPath(), $"test-pack-{Guid.NewGuid():N}");
        try
        {
            using var envelope = new BlobEnvelope(Keys);
            var ids = new List<ChunkId>();
            string id;
            var builder = new PackBuilder(path);
            try
            {
                foreach (var chunk in chunks)
                {
                    var chunkId = envelope.ComputeId(chunk);
                    builder.Add(chunkId, envelope.Seal(chunk), chunk.Length);
                    ids.Add(chunkId);
                }
                (id, _) = builder.FinishAsync(CancellationToken.None).GetAwaiter().GetResult();
            }
            finally
            {
                builder.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            return new TestPack(id, File.ReadAllBytes(path), ids);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>A pack of one random chunk of <paramref name="bytes"/> bytes.</summary>
    public static TestPack Random(int bytes) => Build(RandomNumberGenerator.GetBytes(bytes));

    /// <summary>Base64 of the 32-byte ids, as the commit request carries them.</summary>
    public static string Base64(IEnumerable<ChunkId> ids) => Convert.ToBase64String(ids.SelectMany(i => i.ToArray()).ToArray());
}
