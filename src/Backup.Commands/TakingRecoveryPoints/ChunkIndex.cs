using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
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

    private const int Batch = 5_000;

    /// <summary>
    /// The packs (sorted) that hold <paramref name="chunkIds"/>, for a commit that will reference them: 422 when a chunk is not
    /// indexed (nothing is committed then), and any of those packs that garbage collection condemned is taken off the list
    /// in <paramref name="session"/>, so it is kept (the collector deletes only under the exclusive lock, which the caller's
    /// shared <see cref="CollectionLock"/> holds off). <paramref name="what"/> names the commit in the error.
    /// </summary>
    public static async Task<List<string>> PacksToKeepAsync(IDocumentSession session, IReadOnlyCollection<string> chunkIds, string what, CancellationToken ct)
    {
        var packs = new SortedSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var batch in chunkIds.Distinct(StringComparer.Ordinal).Chunk(Batch))
        {
            var found = (await session.LoadManyAsync<StoredChunk>(ct, batch)).ToDictionary(s => s.Id, StringComparer.Ordinal);
            foreach (var id in batch)
            {
                if (found.TryGetValue(id, out var chunk)) packs.Add(chunk.PackId);
                else missing.Add(id);
            }
        }
        if (missing.Count > 0)
            throw new UnprocessableException($"{missing.Count} chunk(s) the {what} references are not stored on the server, e.g. {missing[0]}; nothing was committed.");

        var packIds = packs.ToList();
        foreach (var batch in packIds.Chunk(Batch))
            foreach (var condemned in await session.LoadManyAsync<CondemnedPack>(ct, batch))
                session.Delete(condemned);
        return packIds;
    }
}
