using Backup.Commands.Common;
using Backup.Storage.Format;
using Marten;
using Npgsql;
using Weasel.Core;
using Weasel.Postgresql;
using Weasel.Postgresql.Tables;

namespace Backup.Commands.Cataloguing;

/// <summary>One item of a recovery point as the catalog keeps it: its path relative to the protected folder, kind, size and mtime.</summary>
public sealed record CataloguedItem(string Path, EntryKind Kind, long Size, DateTimeOffset ModifiedAt);

/// <summary>
/// A recovery point's items as changes against <paramref name="Base"/>, the data source's latest catalogued recovery point as
/// the agent knows it: <paramref name="Added"/> are new or changed items, <paramref name="Removed"/> the paths of items gone or
/// changed (a changed item is in both), all relative to the protected folder.
/// </summary>
public sealed record ItemChanges(Guid Base, IReadOnlyList<CataloguedItem> Added, IReadOnlyList<string> Removed);

/// <summary>
/// What changed in a data source's item list with this recovery point, against the data source's previous catalogued one:
/// <see cref="Added"/> are new or changed items (size, mtime or kind differ), <see cref="Removed"/> the paths of items gone
/// or changed. <see cref="Ordinal"/> numbers the data source's catalogued recovery points 1, 2, 3… in commit order; a
/// large change comes as several events with the same ordinal. <see cref="Root"/> is the protected folder. They are appended
/// to the recovery point's catalog stream (<see cref="ItemCatalog.StreamId"/>), not to the recovery point's own: loading the
/// point (each pack upload, each pack a restore reads) would otherwise read back its whole item list every time.
/// </summary>
public sealed record ItemsCatalogued(
    Guid RecoveryPointId, Guid DataSourceId, int Ordinal, string Root, DateTimeOffset CreatedAt,
    IReadOnlyList<CataloguedItem> Added, IReadOnlyList<string> Removed);

/// <summary>
/// The item catalog: which recovery points hold which path, with its size and mtime in each. Stored as versions, not as a
/// row per item per recovery point: an item version (data source, path, kind, size, mtime) is held by the recovery points
/// whose ordinal is in <c>[from_ordinal, to_ordinal)</c> (open-ended while the latest point still holds it), so a backup in
/// which nothing changed adds one row (its point), not one per file. Points carry their tiers so a search needs no other read.
/// <para>The commit computes the change against the open versions (read-your-write, hence an inline projection and a
/// per-data-source lock); the tables are built from <see cref="ItemsCatalogued"/> events and the point's later life
/// (vault copy, expiry, deletion), so they rebuild from the log.</para>
/// </summary>
public static class ItemCatalog
{
    public const string VersionsTable = "item_versions";
    public const string PointsTable = "item_points";

    /// <summary>
    /// The stream of a recovery point's <see cref="ItemsCatalogued"/> events, started by its commit. (Points committed before
    /// this stream existed have them on their own stream; the catalog is built from the events wherever they are.)
    /// </summary>
    public static Guid StreamId(Guid recoveryPointId) => Common.DeterministicGuid.Create($"item-catalog:{recoveryPointId:N}");

    /// <summary>Items per <see cref="ItemsCatalogued"/> event: bounds the size of one event row.</summary>
    public const int ItemsPerEvent = 5_000;

    public static Table Versions(string schema)
    {
        var table = new Table(new PostgresqlObjectName(schema, VersionsTable, SchemaUtils.IdentifierUsage.General));
        table.AddColumn<Guid>("data_source_id").AsPrimaryKey();
        table.AddColumn<string>("path").AsPrimaryKey();
        table.AddColumn<int>("from_ordinal").AsPrimaryKey();
        table.AddColumn<int>("to_ordinal");
        table.AddColumn<string>("name_lower").NotNull();
        table.AddColumn<int>("kind").NotNull();
        table.AddColumn<long>("size").NotNull();
        table.AddColumn("modified_at", "timestamp with time zone").NotNull();
        table.Indexes.Add(new IndexDefinition($"ix_{VersionsTable}_open") { Columns = ["data_source_id"], Predicate = "to_ordinal is null" });
        // Equality and prefix (LIKE '/folder/%') on the path, whatever the database's collation.
        table.Indexes.Add(new IndexDefinition($"ix_{VersionsTable}_path") { Columns = ["path"], Mask = "? text_pattern_ops" });
        // Name patterns (*.docx, report*, *budget*) through trigrams; pg_trgm is a trusted extension (see Extension below).
        table.Indexes.Add(new IndexDefinition($"ix_{VersionsTable}_name") { Columns = ["name_lower"], Method = IndexMethod.gin, Mask = "? gin_trgm_ops" });
        // A name or a name's beginning (report.docx, doc-0123.*): a btree range, which PostgreSQL picks over the trigrams for a
        // pattern without a leading wildcard (measured at 10M events: 53 ms instead of 370 ms for the index part).
        table.Indexes.Add(new IndexDefinition($"ix_{VersionsTable}_name_prefix") { Columns = ["name_lower"], Mask = "? text_pattern_ops" });
        return table;
    }

    public static Table Points(string schema)
    {
        var table = new Table(new PostgresqlObjectName(schema, PointsTable, SchemaUtils.IdentifierUsage.General));
        table.AddColumn<Guid>("data_source_id").AsPrimaryKey();
        table.AddColumn<int>("ordinal").AsPrimaryKey();
        table.AddColumn<Guid>("recovery_point_id").NotNull();
        table.AddColumn<string>("root").NotNull();
        table.AddColumn("created_at", "timestamp with time zone").NotNull();
        table.AddColumn<bool>("on_disk").NotNull();
        table.AddColumn<bool>("in_vault").NotNull();
        table.AddColumn<bool>("deleted").NotNull();
        // When each tier got or lost the point, for searches as of a past instant.
        table.AddColumn("copied_at", "timestamp with time zone");
        table.AddColumn("disk_expired_at", "timestamp with time zone");
        table.AddColumn("vault_expired_at", "timestamp with time zone");
        table.AddColumn("deleted_at", "timestamp with time zone");
        table.Indexes.Add(new IndexDefinition($"ix_{PointsTable}_rp") { Columns = ["recovery_point_id"] });
        return table;
    }

    /// <summary>pg_trgm in <c>public</c>: shared by every schema of the database, and not dropped with one of them.</summary>
    public static ISchemaObject Trigrams() => new SharedExtension("pg_trgm");

    /// <summary>
    /// The events that catalogue a committed recovery point: its items against the data source's open versions. Takes the
    /// data source's catalog lock for the session's transaction first, so two commits of one data source get successive
    /// ordinals and each diffs against the other's result. The caller has begun the session's transaction.
    /// </summary>
    public static async Task<IReadOnlyList<ItemsCatalogued>> CatalogueAsync(
        IDocumentSession session, Guid recoveryPointId, Guid dataSourceId, string root, DateTimeOffset createdAt,
        IReadOnlyList<CataloguedItem> items, CancellationToken ct)
    {
        var (connection, schema) = await LockAsync(session, dataSourceId, ct);
        var (ordinal, _) = await LatestAsync(connection, schema, dataSourceId, ct);

        var open = new Dictionary<string, (EntryKind Kind, long Size, DateTimeOffset ModifiedAt)>(StringComparer.Ordinal);
        await using (var read = new NpgsqlCommand(
            $"select path, kind, size, modified_at from {schema}.{VersionsTable} where data_source_id = @ds and to_ordinal is null", connection))
        {
            read.Parameters.AddWithValue("ds", dataSourceId);
            await using var reader = await read.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
                open[reader.GetString(0)] = ((EntryKind)reader.GetInt32(1), reader.GetInt64(2), reader.GetFieldValue<DateTimeOffset>(3));
        }

        // Changed items are closed and added again; open versions the new list does not hold are closed.
        var added = new List<CataloguedItem>();
        var removed = new List<string>();
        foreach (var sent in items)
        {
            var item = sent with { ModifiedAt = Microseconds(sent.ModifiedAt) };
            if (open.Remove(FullPath(root, item.Path), out var was))
            {
                if (was.Kind == item.Kind && was.Size == item.Size && was.ModifiedAt == item.ModifiedAt) continue;
                removed.Add(item.Path);
            }
            added.Add(item);
        }
        removed.AddRange(open.Keys.Select(full => RelativePath(root, full)));
        return Events(recoveryPointId, dataSourceId, ordinal + 1, root, createdAt, added, removed);
    }

    /// <summary>
    /// The events that catalogue a committed recovery point whose agent sent only what changed since <see cref="ItemChanges.Base"/>
    /// (a backup in which a few files changed sends those, not the whole tree again). Refused with a 409, nothing written, when the
    /// base is not the data source's latest catalogued point, or the changes do not fit the catalog's open versions (a removed
    /// path that is not open, an added path that is open without being removed): the agent then sends every item instead. Takes
    /// the same lock as <see cref="CatalogueAsync"/>; reads only the changed paths.
    /// </summary>
    public static async Task<IReadOnlyList<ItemsCatalogued>> CatalogueChangesAsync(
        IDocumentSession session, Guid recoveryPointId, Guid dataSourceId, string root, DateTimeOffset createdAt,
        ItemChanges changes, CancellationToken ct)
    {
        var (connection, schema) = await LockAsync(session, dataSourceId, ct);
        var (ordinal, latest) = await LatestAsync(connection, schema, dataSourceId, ct);
        if (latest != changes.Base)
            throw new ConflictException(
                $"The item catalog's latest recovery point of this data source is {(latest is { } id ? id.ToString() : "none")}, not {changes.Base}: send every item.",
                BaseChangedCode);

        var removed = changes.Removed.ToHashSet(StringComparer.Ordinal);
        var open = new HashSet<string>(StringComparer.Ordinal);
        await using (var read = new NpgsqlCommand(
            $"select path from {schema}.{VersionsTable} where data_source_id = @ds and to_ordinal is null and path = any(@paths)", connection))
        {
            read.Parameters.AddWithValue("ds", dataSourceId);
            read.Parameters.AddWithValue("paths", changes.Added.Select(i => FullPath(root, i.Path)).Concat(removed.Select(p => FullPath(root, p))).Distinct().ToArray());
            await using var reader = await read.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct)) open.Add(RelativePath(root, reader.GetString(0)));
        }
        if (removed.FirstOrDefault(p => !open.Contains(p)) is { } notOpen)
            throw new ConflictException($"'{RecoveryPoints.ChunkIdRules.Shorten(notOpen)}' is removed, but the catalog holds no such item: send every item.", BaseChangedCode);
        if (changes.Added.FirstOrDefault(i => open.Contains(i.Path) && !removed.Contains(i.Path)) is { } held)
            throw new ConflictException($"'{RecoveryPoints.ChunkIdRules.Shorten(held.Path)}' is added, but the catalog holds it already: send every item.", BaseChangedCode);

        var added = changes.Added.Select(i => i with { ModifiedAt = Microseconds(i.ModifiedAt) }).ToList();
        return Events(recoveryPointId, dataSourceId, ordinal + 1, root, createdAt, added, changes.Removed);
    }

    /// <summary>The problem code of a 409 that asks the agent to send every item (<see cref="CatalogueChangesAsync"/>).</summary>
    public const string BaseChangedCode = Storage.Contracts.CatalogChanges.BaseChangedCode;

    /// <summary>
    /// Takes the data source's catalog lock for the session's transaction, so two commits of one data source get successive
    /// ordinals and each diffs against the other's result. The caller has begun the session's transaction.
    /// </summary>
    private static async Task<(NpgsqlConnection Connection, string Schema)> LockAsync(IDocumentSession session, Guid dataSourceId, CancellationToken ct)
    {
        var connection = session.Connection ?? throw new InvalidOperationException("The catalog needs the session's transaction to be open.");
        var schema = session.DocumentStore.Options.DatabaseSchemaName;
        await using var locking = new NpgsqlCommand("select pg_advisory_xact_lock(@key)", connection);
        locking.Parameters.AddWithValue("key", LockKey(schema, dataSourceId));
        await locking.ExecuteNonQueryAsync(ct);
        return (connection, schema);
    }

    /// <summary>The data source's latest catalogued ordinal (0 when none) and its recovery point.</summary>
    private static async Task<(int Ordinal, Guid? RecoveryPointId)> LatestAsync(NpgsqlConnection connection, string schema, Guid dataSourceId, CancellationToken ct)
    {
        await using var last = new NpgsqlCommand(
            $"select ordinal, recovery_point_id from {schema}.{PointsTable} where data_source_id = @ds order by ordinal desc limit 1", connection);
        last.Parameters.AddWithValue("ds", dataSourceId);
        await using var reader = await last.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? (reader.GetInt32(0), reader.GetGuid(1)) : (0, null);
    }

    private static List<ItemsCatalogued> Events(
        Guid recoveryPointId, Guid dataSourceId, int ordinal, string root, DateTimeOffset createdAt, IReadOnlyList<CataloguedItem> added, IReadOnlyList<string> removed)
    {
        var addedPages = added.Chunk(ItemsPerEvent).ToList();
        var removedPages = removed.Chunk(ItemsPerEvent).ToList();
        var events = new List<ItemsCatalogued>();
        for (var i = 0; i < Math.Max(1, Math.Max(addedPages.Count, removedPages.Count)); i++)
            events.Add(new ItemsCatalogued(recoveryPointId, dataSourceId, ordinal, root, createdAt,
                i < addedPages.Count ? addedPages[i] : [], i < removedPages.Count ? removedPages[i] : []));
        return events;
    }

    /// <summary>PostgreSQL keeps microseconds; an mtime of 100-ns ticks is cut to what the catalog can hold, or it would never compare equal.</summary>
    private static DateTimeOffset Microseconds(DateTimeOffset at) =>
        new(at.UtcTicks - at.UtcTicks % (TimeSpan.TicksPerMillisecond / 1000), TimeSpan.Zero);

    private static long LockKey(string schema, Guid dataSourceId) =>
        Common.AdvisoryLockKey.For($"backup-item-catalog:{schema}:{dataSourceId:N}");

    /// <summary>The full path of an item: the protected folder joined with its relative path.</summary>
    public static string FullPath(string root, string relative) =>
        relative.Length == 0 ? root : root.EndsWith('/') ? root + relative : $"{root}/{relative}";

    /// <summary>The inverse of <see cref="FullPath"/> for a path under <paramref name="root"/>.</summary>
    public static string RelativePath(string root, string full) => full[(root.TrimEnd('/').Length + 1)..];

    internal static string NameOf(string path) => path[(path.LastIndexOf('/') + 1)..];
}
