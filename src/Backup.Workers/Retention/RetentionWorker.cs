using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Retention;
using Backup.Projections.DataSources;
using Backup.Projections.ProtectionGroups;
using Backup.Projections.RecoveryPoints;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Retention;

/// <summary>A recovery point this worker expired on one tier.</summary>
public sealed record Expiry(Guid RecoveryPointId, StorageTier Tier);

/// <summary>
/// Applies the groups' retention on a timer (the injected <see cref="TimeProvider"/>): on disk the short-term range and the
/// 64-point cap, in the vault the online policy's GFS tiers (<see cref="RetentionRules"/>), and records each expiry as
/// <see cref="RecoveryPointExpired"/> on the recovery point's stream at the version it read, so several workers expire a
/// point once. Packs are reclaimed separately, by the PackCollector.
/// </summary>
public sealed class RetentionWorker(IServiceProvider services, TimeProvider clock, IOptions<RetentionOptions> options, ILogger<RetentionWorker> log)
    : BackgroundService
{
    private static readonly CommandMetadata Worker = new() { Actor = "worker:retention" };

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PeriodicWork.RunAsync(clock, options.Value.Interval, (now, ct) => ExpireAsync(now, ct), log,
            "Applying retention", stoppingToken,
            new Leadership(services, "retention", log));

    /// <summary>Expires what the policies no longer keep at <paramref name="now"/>; returns what this worker expired.</summary>
    public async Task<IReadOnlyList<Expiry>> ExpireAsync(DateTimeOffset now, CancellationToken ct)
    {
        var store = services.GetRequiredService<IDocumentStore>();
        var decisions = new List<(Guid Id, StorageTier Tier, string Reason)>();
        await using (var query = store.QuerySession())
        {
            var groups = (await query.Query<ProtectionGroupView>().Where(g => g.ShortTermPolicy != null).ToListAsync(ct)).ToDictionary(g => g.Id);
            var groupIds = groups.Keys.ToArray();
            var sources = groupIds.Length == 0 ? [] : await query.Query<DataSourceView>().Where(s => s.GroupId.IsOneOf(groupIds)).ToListAsync(ct);
            foreach (var source in sources)
            {
                var group = groups[source.GroupId];
                var points = await query.Query<RecoveryPointView>()
                    .Where(r => r.DataSourceId == source.Id && r.Status == RecoveryPointStatus.Created && (r.OnDisk || r.InVault))
                    .ToListAsync(ct);
                var created = points.ToDictionary(p => p.Id, p => p.CreatedAt!.Value);

                var retentionDays = group.ShortTermPolicy!.RetentionDays;
                var cutoff = now - TimeSpan.FromDays(retentionDays);
                foreach (var id in RetentionRules.ExpiredOnDisk(points.Where(p => p.OnDisk).Select(p => new RetainedPoint(p.Id, created[p.Id])), retentionDays, now))
                    decisions.Add((id, StorageTier.Disk, created[id] < cutoff
                        ? $"older than the short-term range of {retentionDays} days"
                        : $"beyond the {Commands.ProtectionGroups.PolicyLimits.MaxRecoveryPointsOnDisk} recovery points kept on disk"));

                if (group.OnlinePolicy is { } online)
                    foreach (var id in RetentionRules.ExpiredInVault(
                                 points.Where(p => p.InVault).Select(p => new RetainedPoint(p.Id, created[p.Id])), online.Retention, group.ShortTermPolicy.TimeZone, now))
                        decisions.Add((id, StorageTier.Vault, "not kept by the online policy's retention (daily, weekly, monthly, yearly)"));
            }
        }

        var expired = new List<Expiry>();
        foreach (var (id, tier, reason) in decisions)
        {
            ct.ThrowIfCancellationRequested();
            await using var session = Worker.ApplyTo(store.LightweightSession());
            var (point, version) = await session.LoadAsync<RecoveryPoint>(id, RecoveryPoint.Next, ct);
            if (RecoveryPoint.Expire(point, tier, reason, now) is not { } @event) continue;
            session.AppendExpected(id, version, @event);
            try
            {
                await session.SaveChangesAsync(ct);
                expired.Add(new Expiry(id, tier));
            }
            catch (EventStreamUnexpectedMaxEventIdException)
            {
                // Another worker expired it first.
            }
        }
        if (expired.Count > 0) log.LogInformation("Retention expired {Count} recovery point copies", expired.Count);
        return expired;
    }
}
