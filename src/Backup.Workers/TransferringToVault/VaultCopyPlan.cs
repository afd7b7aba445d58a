using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.RecoveryPoints;
using Backup.Projections.DataSources;
using Backup.Projections.ProtectionGroups;
using Backup.Projections.RecoveryPoints;
using Marten;

namespace Backup.Workers.TransferringToVault;

/// <summary>
/// Which recovery points the vault copy takes, and when: a group without an online policy has each new recovery point
/// copied right after it is created; a group with one waits for its online schedule (<c>OnlineBackupDue</c>), which copies
/// the latest recovery point of each of its data sources that is not in the vault yet.
/// </summary>
public static class VaultCopyPlan
{
    public static async Task<bool> CopiesRightAwayAsync(IQuerySession session, Guid dataSourceId, CancellationToken ct)
    {
        var source = await session.LoadAsync<DataSourceView>(dataSourceId, ct);
        if (source is null) return true;
        // The subscription may reach a point's creation after its data source was removed with its data: nothing to copy then.
        if (source.RemovedData == DataOnRemoval.Delete) return false;
        var group = await session.LoadAsync<ProtectionGroupView>(source.GroupId, ct);
        return group?.OnlinePolicy is null;
    }

    /// <summary>
    /// The latest created recovery point of each data source of the group, where it is not in the vault yet. Read from the
    /// recovery-point view (async), so a point created a moment before the due instant may only be taken by the next one.
    /// </summary>
    public static async Task<IReadOnlyList<RecoveryPoint>> DueOnlineAsync(IQuerySession session, Guid groupId, CancellationToken ct)
    {
        // Removed data sources are no longer protected: no new online copies.
        var sources = await session.Query<DataSourceView>().Where(s => s.GroupId == groupId && s.RemovedAt == null).ToListAsync(ct);
        var due = new List<RecoveryPoint>();
        foreach (var source in sources)
        {
            var latest = (await session.Query<RecoveryPointView>()
                .Where(r => r.DataSourceId == source.Id && r.Status == RecoveryPointStatus.Created)
                .OrderByDescending(r => r.CreatedAt).Take(1).ToListAsync(ct)).FirstOrDefault();
            if (latest is null || latest.InVault) continue;
            // The pack ids are in the stream, not the view.
            var (point, _) = await session.LoadAsync<RecoveryPoint>(latest.Id, RecoveryPoint.Next, ct);
            if (point is { Status: RecoveryPointStatus.Created, Deleted: false }) due.Add(point);
        }
        return due;
    }
}
