using Backup.Commands.Cataloguing;
using Backup.Projections.Auditing;
using Backup.Projections.RecoveryPoints;
using Backup.Storage.Format;
using FluentValidation;
using Marten;
using Mediator;
using Npgsql;

namespace Backup.Projections.Items;

/// <summary>One recovery point that holds the item, as it was in that point, and where the point is kept.</summary>
public sealed record ItemCopy(
    Guid RecoveryPointId, DateTimeOffset CreatedAt, EntryKind Kind, long Size, DateTimeOffset ModifiedAt, bool OnDisk, bool InVault);

/// <summary>
/// Every kept recovery point that holds one path of one data source, newest first. <see cref="RelativePath"/> is what a
/// restore's <c>paths</c> takes.
/// </summary>
public sealed record ItemLocations(Guid DataSourceId, string Path, string RelativePath, IReadOnlyList<ItemCopy> Copies);

/// <summary>
/// Which recovery points hold an item: <see cref="Path"/> an exact absolute path, <see cref="Name"/> a file-name pattern
/// (<c>*</c> any run of characters, <c>?</c> one; case-insensitive; the whole name must match), <see cref="Under"/> everything
/// below an absolute folder; at least one of them. Only recovery points still kept on disk or in the vault count. Items are
/// ordered by path then data source; <see cref="After"/> is the cursor a previous page returned.
/// </summary>
/// <para><see cref="AsOf"/>: the recovery points that held the item then (created by then, on a tier not yet expired or deleted
/// then), each with the tiers of that instant.</para>
public sealed record SearchItems(
    string? Path = null, string? Name = null, string? Under = null, Guid? DataSourceId = null, string? After = null, int Limit = 50,
    DateTimeOffset? AsOf = null)
    : IQuery<Page<ItemLocations>>;

public sealed class SearchItemsValidator : AbstractValidator<SearchItems>
{
    public SearchItemsValidator(TimeProvider clock)
    {
        RuleFor(x => x.AsOf).Must(asOf => asOf is not { } at || at <= clock.GetUtcNow())
            .WithMessage("'asOf' is in the future: items are found as they are now or were at a past instant.");
        RuleFor(x => x.Name).NotEmpty().WithMessage("Give 'path', 'name' or 'under' to search for.")
            .When(x => string.IsNullOrEmpty(x.Path) && string.IsNullOrEmpty(x.Under));
        RuleFor(x => x.Path).Must(p => p!.StartsWith('/') && p.Length <= 8_192).When(x => x.Path is not null)
            .WithMessage("'path' must be an absolute path (it starts with '/').");
        RuleFor(x => x.Under).Must(p => p!.StartsWith('/') && p.Length <= 8_192).When(x => x.Under is not null)
            .WithMessage("'under' must be an absolute folder path (it starts with '/').");
        RuleFor(x => x.Name).Must(n => !n!.Contains('/') && n.Length <= 255 && n.Trim('*').Length > 0).When(x => !string.IsNullOrEmpty(x.Name))
            .WithMessage("'name' is a file-name pattern: no '/', at most 255 characters, and more than '*'.");
        RuleFor(x => x.Limit).InclusiveBetween(1, 200);
        RuleFor(x => x.After).Must(a => a is null || ItemCursor.TryDecode(a, out _, out _))
            .WithMessage("'after' is not a cursor this API returned.");
    }
}

/// <summary>Keyset cursor over (path, data source): stable while new recovery points arrive.</summary>
public static class ItemCursor
{
    private const string Prefix = "item:";

    public static string Encode(string path, Guid dataSourceId) => CursorText.Encode($"{Prefix}{dataSourceId:N}{path}");

    public static bool TryDecode(string cursor, out string path, out Guid dataSourceId)
    {
        path = "";
        dataSourceId = Guid.Empty;
        if (!CursorText.TryDecode(cursor, Prefix, out var position) || position.Length < 33) return false;
        path = position[32..];
        return Guid.TryParseExact(position.AsSpan(0, 32), "N", out dataSourceId) && path.StartsWith('/');
    }
}

public sealed class SearchItemsHandler(IQuerySession session) : IQueryHandler<SearchItems, Page<ItemLocations>>
{
    public async ValueTask<Page<ItemLocations>> Handle(SearchItems query, CancellationToken ct)
    {
        var schema = session.Schema();
        var versions = $"\"{schema}\".{ItemCatalog.VersionsTable}";
        var points = $"\"{schema}\".{ItemCatalog.PointsTable}";
        // Live: the tier flags. As of T: created by T, and on disk (not expired or deleted by T) or in the vault (copied by T,
        // not expired or deleted by T).
        const string disk = "((p.disk_expired_at is null or p.disk_expired_at > @at) and (p.deleted_at is null or p.deleted_at > @at))";
        const string vault = "(p.copied_at is not null and p.copied_at <= @at and (p.vault_expired_at is null or p.vault_expired_at > @at) and (p.deleted_at is null or p.deleted_at > @at))";
        var (onDisk, inVault, kept) = query.AsOf is null
            ? ("p.on_disk", "p.in_vault", "(p.on_disk or p.in_vault)")
            : (disk, vault, $"p.created_at <= @at and ({disk} or {vault})");
        var held = "p.data_source_id = v.data_source_id and p.ordinal >= v.from_ordinal and (v.to_ordinal is null or p.ordinal < v.to_ordinal) "
            + $"and {kept}";

        await using var connection = session.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand { Connection = connection };
        if (query.AsOf is { } asOf) command.Parameters.AddWithValue("at", asOf.ToUniversalTime());
        var where = new List<string>();
        if (query.Path is { } path)
        {
            where.Add("v.path = @path");
            command.Parameters.AddWithValue("path", path);
        }
        if (!string.IsNullOrEmpty(query.Name))
        {
            where.Add(@"v.name_lower like @name escape '\'");
            command.Parameters.AddWithValue("name", Like(query.Name.ToLowerInvariant()));
        }
        if (query.Under is { } under)
        {
            where.Add(@"v.path like @under escape '\'");
            command.Parameters.AddWithValue("under", Escape(under.TrimEnd('/')) + "/%");
        }
        if (query.DataSourceId is { } ds)
        {
            where.Add("v.data_source_id = @ds");
            command.Parameters.AddWithValue("ds", ds);
        }
        if (query.After is { } after && ItemCursor.TryDecode(after, out var afterPath, out var afterSource))
        {
            where.Add("(v.path, v.data_source_id) > (@afterPath, @afterSource)");
            command.Parameters.AddWithValue("afterPath", afterPath);
            command.Parameters.AddWithValue("afterSource", afterSource);
        }
        command.Parameters.AddWithValue("limit", query.Limit + 1);
        // First the page of items (those with at least one kept copy), then every kept copy of each.
        command.CommandText = $"""
            with matched as (
                select distinct v.path, v.data_source_id from {versions} v join {points} p on {held}
                where {string.Join(" and ", where)}
                order by v.path, v.data_source_id limit @limit)
            select m.path, m.data_source_id, p.recovery_point_id, p.created_at, v.kind, v.size, v.modified_at, {onDisk}, {inVault}, p.root
            from matched m
            join {versions} v on v.data_source_id = m.data_source_id and v.path = m.path
            join {points} p on {held}
            order by m.path, m.data_source_id, p.ordinal desc
            """;

        var items = new List<ItemLocations>();
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            List<ItemCopy>? copies = null;
            while (await reader.ReadAsync(ct))
            {
                var itemPath = reader.GetString(0);
                var dataSourceId = reader.GetGuid(1);
                if (copies is null || items[^1].Path != itemPath || items[^1].DataSourceId != dataSourceId)
                {
                    copies = [];
                    items.Add(new ItemLocations(dataSourceId, itemPath, ItemCatalog.RelativePath(reader.GetString(9), itemPath), copies));
                }
                copies.Add(new ItemCopy(reader.GetGuid(2), reader.GetFieldValue<DateTimeOffset>(3), (EntryKind)reader.GetInt32(4), reader.GetInt64(5),
                    reader.GetFieldValue<DateTimeOffset>(6), reader.GetBoolean(7), reader.GetBoolean(8)));
            }
        }
        return items.Count > query.Limit
            ? new Page<ItemLocations>(items.Take(query.Limit).ToList(), ItemCursor.Encode(items[query.Limit - 1].Path, items[query.Limit - 1].DataSourceId))
            : new Page<ItemLocations>(items, null);
    }

    private static string Escape(string text) => text.Replace(@"\", @"\\").Replace("%", @"\%").Replace("_", @"\_");

    /// <summary>A name pattern as SQL LIKE: the pattern's own % and _ are literal, * and ? are the wildcards.</summary>
    internal static string Like(string pattern) => Escape(pattern).Replace('*', '%').Replace('?', '_');
}
