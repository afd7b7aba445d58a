using Backup.Storage.Format;
using Marten;

namespace Backup.Commands.TakingRecoveryPoints;

/// <summary>Reads of the server's chunk index, in the wire form the agent and the checks use.</summary>
public static class ChunkIndex
{
    /// <summary>Every indexed chunk that lies in one of <paramref name="packIds"/>, in one query.</summary>
    public static async Task<List<ChunkLocation>> InPacksAsync(this IQuerySession session, IEnumerable<string> packIds, CancellationToken ct)
    {
        var packs = packIds.ToArray();
        var chunks = await session.Query<StoredChunk>().Where(c => c.PackId.IsOneOf(packs)).ToListAsync(ct);
        return chunks.Select(c => new ChunkLocation(c.Id, c.PackId, c.Offset, c.Length, c.PlainLength)).ToList();
    }
}
