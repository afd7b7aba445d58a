using Marten;

namespace Backup.Projections.Compliance;

/// <summary>
/// The latest facts of every data source (the compliance projection's heads), kept in memory by an API process so that
/// compliance *now* evaluates them without reading a snapshot row per data source on every request. Each use first asks the
/// store for the heads that changed since (one probe of the index on their sequence) and for how many there are (a rebuild
/// deletes them: then all are read again), so the answer is the one the snapshot table gives, as fresh as the projection.
/// A head stamped later than the instant asked for is not used: that data source's snapshot row valid then is read instead.
/// </summary>
public sealed class ComplianceHeads
{
    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private Heads _heads = new(new Dictionary<Guid, ComplianceSource>(), -1, -1);

    private sealed record Heads(IReadOnlyDictionary<Guid, ComplianceSource> BySource, long HighestSequence, int Count);

    /// <summary>Every data source's head as the store has it now, up to date with the projection.</summary>
    public async Task<IReadOnlyDictionary<Guid, ComplianceSource>> CurrentAsync(IQuerySession session, CancellationToken ct)
    {
        var heads = _heads;
        var count = await session.Query<ComplianceSource>().CountAsync(ct);
        if (count == heads.Count && !await session.Query<ComplianceSource>().AnyAsync(s => s.Sequence > heads.HighestSequence, ct))
            return heads.BySource;

        await _refreshing.WaitAsync(ct);
        try
        {
            heads = _heads;
            var changed = count == heads.Count
                ? await session.Query<ComplianceSource>().Where(s => s.Sequence > heads.HighestSequence).ToListAsync(ct)
                : await session.Query<ComplianceSource>().ToListAsync(ct);
            var bySource = count == heads.Count ? new Dictionary<Guid, ComplianceSource>(heads.BySource) : [];
            foreach (var source in changed) bySource[source.Id] = source;
            var highest = bySource.Count == 0 ? -1 : bySource.Values.Max(s => s.Sequence);
            _heads = new Heads(bySource, highest, bySource.Count);
            return bySource;
        }
        finally
        {
            _refreshing.Release();
        }
    }
}
