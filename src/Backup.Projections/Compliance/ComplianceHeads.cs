using System.Collections.Concurrent;
using System.Text.Json;
using Marten;

namespace Backup.Projections.Compliance;

/// <summary>
/// The compliance facts an API process keeps in memory, so that a report does not read and parse a snapshot row per data
/// source on every request:
/// <list type="bullet">
/// <item>the heads (the projection's <see cref="ComplianceSource"/> documents, each data source's latest facts), for compliance
/// now. Each use first asks the store for the heads changed since (one probe of the index on their sequence) and how many there
/// are (a rebuild deletes them: then all are read again), so the answer is as fresh as the projection;</item>
/// <item>snapshot rows read before, for compliance as of a past instant: rows are only ever appended and never change, so a row
/// read once is the same row the next time. A report asks the store which row is valid at the instant for each data source (an
/// index-only probe of the primary key) and reads only the rows it does not hold. At most <see cref="RowCapacity"/> rows are
/// kept; past that the cache starts again. A rebuild (noticed as above) empties it too, since a rebuilt projection may write
/// other facts under the same keys.</item>
/// <item>the last as-of evaluations, by instant: an as-of report asked again for the same instant (the next page, a second
/// auditor) whose probe finds exactly the same rows valid is the same pure evaluation of the same facts, so it is reused
/// rather than recomputed (at most <see cref="AsOfCapacity"/> instants; emptied with the rows).</item>
/// </list>
/// </summary>
public sealed class ComplianceHeads
{
    /// <summary>Rows kept for as-of reports: ten reports over 2,000 data sources, ~40 MB.</summary>
    public const int RowCapacity = 20_000;

    /// <summary>As-of evaluations kept, each with the row keys it was made from.</summary>
    public const int AsOfCapacity = 32;

    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private readonly ConcurrentDictionary<DateTimeOffset, AsOf> _asOf = new();

    /// <param name="Heads">The heads the rows were last found valid with: while they are the current heads, no row was appended since.</param>
    private sealed record AsOf(Guid[] Ids, (Guid DataSourceId, long Sequence)[] Rows, IReadOnlyList<Evaluated> Sorted, object Heads);
    private readonly ConcurrentDictionary<(Guid DataSourceId, long Sequence), ComplianceFacts> _rows = new();
    private Heads _heads = new(new Dictionary<Guid, ComplianceSource>(), -1, -1);

    private sealed record Heads(IReadOnlyDictionary<Guid, ComplianceSource> BySource, long HighestSequence, int Count);

    /// <summary>
    /// How long the verdicts of compliance now are reused while no head changes: a report asked within this of the last
    /// evaluation is that evaluation (its <c>asOf</c> says the instant it was evaluated at, so it is still exactly the as-of
    /// report of that instant).
    /// </summary>
    public static readonly TimeSpan NowResolution = TimeSpan.FromSeconds(1);

    private Verdicts? _now;

    /// <summary>Every data source's facts and verdict (without reasons) at <see cref="At"/>, in the report's order.</summary>
    public sealed record Verdicts(DateTimeOffset At, IReadOnlyList<Evaluated> Sorted, object Version);

    public sealed record Evaluated(ComplianceFacts Facts, DataSourceCompliance Verdict);

    /// <summary>
    /// Evaluates facts at <paramref name="at"/> without reasons, in the report's order (group, path, data source). A data source
    /// removed from protection by then is left out: it has no policy to meet any more, and counted it would be non-compliant for good.
    /// </summary>
    public static IReadOnlyList<Evaluated> Evaluate(IEnumerable<ComplianceFacts> facts, DateTimeOffset at, DueTimes dueTimes) =>
    [
        .. facts.Where(f => f.RemovedAt is not { } removed || removed > at).Select(f => new Evaluated(f, ComplianceEvaluation.Evaluate(f, at, dueTimes, explain: false)))
            .OrderBy(e => e.Verdict.GroupId).ThenBy(e => e.Verdict.Path, StringComparer.Ordinal).ThenBy(e => e.Verdict.DataSourceId),
    ];

    /// <summary>
    /// Compliance now of every data source: the last evaluation when no head changed and it is less than <see cref="NowResolution"/>
    /// old, else an evaluation at <paramref name="now"/> of the heads (or of the row valid now, for a head stamped later).
    /// </summary>
    public async Task<Verdicts> NowAsync(IQuerySession session, DateTimeOffset now, CancellationToken ct)
    {
        var current = await CurrentAsync(session, ct);
        if (_now is { } last && ReferenceEquals(last.Version, current) && now >= last.At && now - last.At < NowResolution) return last;
        var facts = new List<ComplianceFacts>(current.Count);
        var later = new List<Guid>();
        foreach (var head in current.Values)
        {
            if (head.ValidFrom <= now) facts.Add(head.Facts);
            else later.Add(head.Id);
        }
        if (later.Count > 0) facts.AddRange(await ValidAtAsync(session, [.. later], now, ct));
        var verdicts = new Verdicts(now, Evaluate(facts, now, new DueTimes()), current);
        _now = verdicts;
        return verdicts;
    }

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
            var rebuilt = count != heads.Count;
            var changed = rebuilt
                ? await session.Query<ComplianceSource>().ToListAsync(ct)
                : await session.Query<ComplianceSource>().Where(s => s.Sequence > heads.HighestSequence).ToListAsync(ct);
            if (rebuilt)
            {
                _rows.Clear();
                _asOf.Clear();
            }
            var bySource = rebuilt ? [] : new Dictionary<Guid, ComplianceSource>(heads.BySource);
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

    /// <summary>
    /// Every one of <paramref name="ids"/> evaluated (without reasons) at <paramref name="at"/> from the facts valid then, in the
    /// report's order: the evaluation kept for that instant when the rows valid then are still exactly those it was made from,
    /// else a new one. <paramref name="heads"/> are the heads <see cref="CurrentAsync"/> returned in this request (it is what
    /// notices a rebuild): every snapshot row is appended together with its data source's new head, so while the heads are
    /// those of the kept evaluation no row was appended since and the evaluation stands without asking the store again.
    /// </summary>
    public async Task<IReadOnlyList<Evaluated>> AsOfAsync(
        IQuerySession session, IReadOnlyDictionary<Guid, ComplianceSource> heads, Guid[] ids, DateTimeOffset at, CancellationToken ct)
    {
        var sortedIds = ids.Order().ToArray();
        // Kept for this instant and for exactly these data sources (a group's report and the whole report differ).
        if (_asOf.TryGetValue(at, out var kept) && !kept.Ids.AsSpan().SequenceEqual(sortedIds)) kept = null;
        if (kept is not null && ReferenceEquals(kept.Heads, heads)) return kept.Sorted;
        var rows = await ValidRowsAsync(session, ids, at, ct);
        Array.Sort(rows);
        if (kept is not null && kept.Rows.AsSpan().SequenceEqual(rows))
        {
            _asOf[at] = kept with { Heads = heads };
            return kept.Sorted;
        }
        var sorted = Evaluate(await FactsAsync(session, rows, at, ct), at, new DueTimes());
        if (_asOf.Count >= AsOfCapacity) _asOf.Clear();
        _asOf[at] = new AsOf(sortedIds, rows, sorted, heads);
        return sorted;
    }

    /// <summary>
    /// For each of <paramref name="ids"/>, the facts valid at <paramref name="at"/> (none for one protected later). Call
    /// <see cref="CurrentAsync"/> first in the same request: it is what notices a rebuild.
    /// </summary>
    public async Task<IReadOnlyList<ComplianceFacts>> ValidAtAsync(IQuerySession session, Guid[] ids, DateTimeOffset at, CancellationToken ct) =>
        await FactsAsync(session, await ValidRowsAsync(session, ids, at, ct), at, ct);

    /// <summary>Which row is valid at the instant, per data source: the key only, from the primary key's index.</summary>
    private static async Task<(Guid DataSourceId, long Sequence)[]> ValidRowsAsync(IQuerySession session, Guid[] ids, DateTimeOffset at, CancellationToken ct)
    {
        var keys = await session.AdvancedSql.QueryAsync<string>(
            ComplianceSnapshots.ValidAtSql(session, "sequence", "d.id::text || ' ' || s.sequence::text"), ct, ids, at.ToUniversalTime());
        return [.. keys.Select(key =>
        {
            var space = key.IndexOf(' ');
            return (Guid.Parse(key.AsSpan(0, space)), long.Parse(key.AsSpan(space + 1)));
        })];
    }

    /// <summary>The facts of <paramref name="rows"/>: those held, and the others read (and kept).</summary>
    private async Task<IReadOnlyList<ComplianceFacts>> FactsAsync(IQuerySession session, (Guid DataSourceId, long Sequence)[] rows, DateTimeOffset at, CancellationToken ct)
    {
        var facts = new List<ComplianceFacts>(rows.Length);
        var missing = new List<Guid>();
        foreach (var row in rows)
        {
            if (_rows.TryGetValue(row, out var held)) facts.Add(held);
            else missing.Add(row.DataSourceId);
        }
        if (missing.Count == 0) return facts;

        // The rows not held, with their keys (a row appended since the probe above is the one valid now: kept under its own key).
        var read = await session.AdvancedSql.QueryAsync<string>(
            ComplianceSnapshots.ValidAtSql(session, "sequence, facts", "s.sequence::text || ' ' || s.facts::text"), ct, missing.ToArray(), at.ToUniversalTime());
        if (_rows.Count + read.Count > RowCapacity) _rows.Clear();
        foreach (var row in read)
        {
            var space = row.IndexOf(' ');
            var parsed = JsonSerializer.Deserialize<ComplianceFacts>(row.AsSpan(space + 1), ComplianceProjection.Json)!;
            _rows[(parsed.DataSourceId, long.Parse(row.AsSpan(0, space)))] = parsed;
            facts.Add(parsed);
        }
        return facts;
    }
}
