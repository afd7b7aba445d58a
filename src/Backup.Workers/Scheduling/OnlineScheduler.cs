using Backup.Commands.Common;
using Backup.Commands.Scheduling;
using Backup.Projections.ProtectionGroups;
using Marten;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Scheduling;

/// <summary>
/// Turns online policies into <see cref="OnlineBackupDue"/> events, which the vault copy subscription acts on. Every tick
/// takes the instants of each group's online policy in (last tick, now] (at most <see cref="SchedulerOptions.Lookback"/>
/// back) from <see cref="OnlineCalendar"/>, in the time zone of the group's short-term policy, and starts the stream
/// <see cref="OnlineCalendar.OnlineBackupDueId"/> for each: several workers collide on the id, so each is due once.
/// </summary>
public sealed class OnlineScheduler(
    IServiceProvider services, TimeProvider clock, IOptions<SchedulerOptions> options, ILogger<OnlineScheduler> log) : BackgroundService
{
    private DateTimeOffset? _lastTick;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        // As in the short-term scheduler: a failed tick leaves the mark where it was, and the next one covers the same instants.
        PeriodicWork.RunAsync(clock, options.Value.TickInterval, (now, ct) => TickAsync(now, ct), log,
            "Online scheduling tick", stoppingToken,
            new Leadership(services, "online scheduler", log));

    /// <summary>Appends every online backup due after the previous tick (or <c>now - lookback</c>) up to and including <paramref name="now"/>.</summary>
    /// <returns>The due ids this call started (not those another worker started first).</returns>
    public async Task<IReadOnlyList<Guid>> TickAsync(DateTimeOffset now, CancellationToken ct)
    {
        var earliest = now - options.Value.Lookback;
        var from = _lastTick is { } last && last > earliest ? last : earliest;
        if (from >= now) return [];

        var store = services.GetRequiredService<IDocumentStore>();
        IReadOnlyList<ProtectionGroupView> groups;
        await using (var query = store.QuerySession())
            groups = await query.Query<ProtectionGroupView>().Where(g => g.OnlinePolicy != null && g.ShortTermPolicy != null).ToListAsync(ct);

        var started = new List<Guid>();
        foreach (var group in groups)
            foreach (var at in OnlineCalendar.BackupTimes(group.OnlinePolicy!, group.ShortTermPolicy!.TimeZone, from).TakeWhile(at => at <= now))
            {
                ct.ThrowIfCancellationRequested();
                if (at > group.CreatedAt && await DueAsync(store, group.Id, at, ct) is { } id) started.Add(id);
            }
        _lastTick = now;
        if (started.Count > 0) log.LogInformation("Scheduler found {Count} online backups due in ({From}, {Now}]", started.Count, from, now);
        return started;
    }

    private static async Task<Guid?> DueAsync(IDocumentStore store, Guid groupId, DateTimeOffset dueAt, CancellationToken ct)
    {
        var due = OnlineCalendar.Due(groupId, dueAt);
        var id = due.DueId;
        var metadata = new CommandMetadata { Actor = ShortTermScheduler.Actor, CorrelationId = $"online-backup-due:{id}" };
        await using var session = metadata.ApplyTo(store.LightweightSession());
        session.Events.StartStream(id, due);
        try
        {
            await session.SaveChangesAsync(ct);
            return id;
        }
        catch (Marten.Exceptions.ExistingStreamIdCollisionException)
        {
            // Another worker (or an earlier tick of this one) appended it already.
            return null;
        }
    }
}
