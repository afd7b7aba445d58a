using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Storage.Format;
using Marten;
using Npgsql;
using NpgsqlTypes;

namespace Backup.Commands.RecoveryPoints;

/// <summary>Reads of the server's chunk index, in the wire form the agent and the checks use.</summary>
public static class ChunkIndex
{
    /// <summary>Every indexed chunk that lies in one of <paramref name="packIds"/>, in one query.</summary>
    public static async Task<List<ChunkLocation>> InPacksAsync(this IQuerySession session, IEnumerable<string> packIds, CancellationToken ct)
    {
        var packs = packIds.ToArray();
        var chunks = await session.Query<StoredChunk>().Where(c => c.PackId.IsOneOf(packs)).ToListAsync(ct);
        return chunks.Select(c => new ChunkLocation(c.Id, c.PackId, c.Offset, c.Length, c.PlainLength, c.PlainOffset)).ToList();
    }

    private const int Batch = 20_000;

    /// <summary>
    /// The packs (sorted) that hold <paramref name="chunkIds"/>, for a commit that will reference them: 422 when a chunk is not
    /// indexed (nothing is committed then), and any of those packs that garbage collection condemned is taken off the list
    /// in <paramref name="session"/>, so it is kept (the collector deletes only under the exclusive lock, which the caller's
    /// shared <see cref="CollectionLock"/> holds off, and which began the session's transaction). <paramref name="what"/> names
    /// the commit in the error.
    /// </summary>
    public static async Task<List<string>> PacksToKeepAsync(IDocumentSession session, IReadOnlyCollection<string> chunkIds, string what, CancellationToken ct)
    {
        // One statement per batch: which packs hold its ids and how many of them are indexed (a hash join of the ids with the
        // index, not a probe per id); a short batch is then searched for an id that is missing, to name it. Only pack ids leave
        // the database, not 20,000 documents to deserialize and track (measured at 20,000 ids: 147 ms in two queries per
        // 5,000 ids, one of which loaded the pack ids and the other counted).
        var connection = session.Connection ?? throw new InvalidOperationException("Resolving chunks needs the session's transaction to be open.");
        var table = session.DocumentStore.Options.FindOrResolveDocumentType(typeof(StoredChunk)).TableName.QualifiedName;
        var packs = new SortedSet<string>(StringComparer.Ordinal);
        var missing = 0;
        string? example = null;
        foreach (var batch in chunkIds.Distinct(StringComparer.Ordinal).Chunk(Batch))
        {
            var found = 0L;
            await using (var command = new NpgsqlCommand(
                $"select d.data ->> 'PackId', count(*) from unnest(@ids) as u(id) join {table} d on d.id = u.id group by 1", connection))
            {
                command.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = batch });
                await using var reader = await command.ExecuteReaderAsync(ct);
                while (await reader.ReadAsync(ct))
                {
                    packs.Add(reader.GetString(0));
                    found += reader.GetInt64(1);
                }
            }
            if (found == batch.Length) continue;
            missing += batch.Length - (int)found;
            if (example is not null) continue;
            var present = (await session.Query<StoredChunk>().Where(c => c.Id.IsOneOf(batch)).Select(c => c.Id).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
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
