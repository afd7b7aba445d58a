using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
using JasperFx.Events;
using Marten;
using Marten.Events.Projections;

namespace Backup.Commands.Cataloguing;

/// <summary>
/// Keeps <see cref="ItemCatalog"/>'s tables: <see cref="ItemsCatalogued"/> closes the removed paths' open versions (only those
/// opened by an earlier point, so a changed item's new version in another page of the same point stays open) and opens the
/// added ones; a point's tiers follow its vault copy, expiries and deletion. Inline: the next commit of the data source diffs
/// against what this one wrote. Every statement is idempotent, so a rebuild over the log lands on the same rows.
/// </summary>
public sealed class ItemCatalogProjection(string schema) : IProjection
{
    public const string Name = "item-catalog";

    private readonly string _versions = $"{schema}.{ItemCatalog.VersionsTable}";
    private readonly string _points = $"{schema}.{ItemCatalog.PointsTable}";

    public Task ApplyAsync(IDocumentOperations operations, IReadOnlyList<IEvent> events, CancellationToken cancellation)
    {
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case ItemsCatalogued x:
                    operations.QueueSqlCommand(
                        $"insert into {_points} (data_source_id, ordinal, recovery_point_id, root, created_at, on_disk, in_vault, deleted) "
                        + "values (?, ?, ?, ?, ?, true, false, false) on conflict do nothing",
                        x.DataSourceId, x.Ordinal, x.RecoveryPointId, x.Root, x.CreatedAt.ToUniversalTime());
                    if (x.Removed.Count > 0)
                        operations.QueueSqlCommand(
                            $"update {_versions} set to_ordinal = ? where data_source_id = ? and to_ordinal is null and from_ordinal < ? and path = any(?)",
                            x.Ordinal, x.DataSourceId, x.Ordinal, x.Removed.Select(p => ItemCatalog.FullPath(x.Root, p)).ToArray());
                    if (x.Added.Count > 0)
                        operations.QueueSqlCommand(
                            $"insert into {_versions} (data_source_id, path, from_ordinal, name_lower, kind, size, modified_at) "
                            + "select ?, t.path, ?, t.name_lower, t.kind, t.size, t.modified_at "
                            + "from unnest(?::text[], ?::text[], ?::int[], ?::bigint[], ?::timestamptz[]) as t(path, name_lower, kind, size, modified_at) "
                            + "on conflict do nothing",
                            x.DataSourceId, x.Ordinal,
                            x.Added.Select(i => ItemCatalog.FullPath(x.Root, i.Path)).ToArray(),
                            x.Added.Select(i => ItemCatalog.NameOf(i.Path).ToLowerInvariant()).ToArray(),
                            x.Added.Select(i => (int)i.Kind).ToArray(),
                            x.Added.Select(i => i.Size).ToArray(),
                            x.Added.Select(i => i.ModifiedAt.ToUniversalTime()).ToArray());
                    break;

                case VaultTransferCompleted x:
                    // A copy that finished after the point was deleted does not bring it back.
                    operations.QueueSqlCommand($"update {_points} set in_vault = not deleted where recovery_point_id = ?", x.RecoveryPointId);
                    break;

                case RecoveryPointExpired { Tier: StorageTier.Disk } x:
                    operations.QueueSqlCommand($"update {_points} set on_disk = false where recovery_point_id = ?", x.RecoveryPointId);
                    break;

                case RecoveryPointExpired { Tier: StorageTier.Vault } x:
                    operations.QueueSqlCommand($"update {_points} set in_vault = false where recovery_point_id = ?", x.RecoveryPointId);
                    break;

                case RecoveryPointDeleted x:
                    operations.QueueSqlCommand(
                        $"update {_points} set on_disk = false, in_vault = false, deleted = true where recovery_point_id = ?", x.RecoveryPointId);
                    break;
            }
        }
        return Task.CompletedTask;
    }
}
