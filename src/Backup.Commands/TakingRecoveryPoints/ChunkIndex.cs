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
        // Only the pack ids leave the database (not 30,000 documents to deserialize and track): per batch, how many of its ids
        // are indexed and which packs hold them; a short batch is then searched for the ids that are missing, to name one.
        var packs = new SortedSet<string>(StringComparer.Ordinal);
        var missing = 0;
        string? example = null;
        foreach (var batch in chunkIds.Distinct(StringComparer.Ordinal).Chunk(Batch))
        {
            var indexed = session.Query<StoredChunk>().Where(c => c.Id.IsOneOf(batch));
            packs.UnionWith(await indexed.Select(c => c.PackId).Distinct().ToListAsync(ct));
            var found = await indexed.CountAsync(ct);
            if (found == batch.Length) continue;
            missing += batch.Length - found;
            if (example is not null) continue;
            var present = (await indexed.Select(c => c.Id).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
            example = batch.First(id => !present.Contains(id));
        }
        if (missing > 0)
            throw new UnprocessableException($"{missing} chunk(s) the {what} references are not stored on the server, e.g. {example}; nothing was committed.");

        var packIds = packs.ToList();
        foreach (var batch in packIds.Chunk(Batch))
            foreach (var condemned in await session.LoadManyAsync<CondemnedPack>(ct, batch))
                session.Delete(condemned);
        return packIds;
    }
}
