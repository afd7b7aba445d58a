using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using Backup.Projections.DataSources;
using Backup.Projections.ProtectionGroups;
using Marten;
using Marten.Exceptions;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Scheduling;

/// <summary>
/// Turns short-term policies into backup requests. Every tick takes the due recovery-point instants of each group
/// in (last tick, now] (at most <see cref="SchedulerOptions.Lookback"/> back) from <see cref="ShortTermCalendar"/>
/// and, for each data source of the group, starts the recovery-point stream <see cref="ShortTermCalendar.BackupDueId"/>
/// with <see cref="BackupRequested"/>. The id is deterministic, so several workers ticking over the same window
/// collide on the stream id and each due recovery point is requested exactly once; the agent's job queue
/// (inline on <see cref="BackupRequested"/>) picks it up as it does a manual request.
/// <para><see cref="BackupRequested.RequestedAt"/> is the due instant, not the tick's clock, so every worker writes
/// the same event; when it was actually appended is the event's own timestamp.</para>
/// <para>Synchronisation-only slots are not scheduled: the agent has no sync-only job yet, and a recovery point
/// per sync slot would break the policy's recovery-point count. Every recovery point carries its sync.</para>
/// </summary>
public sealed class ShortTermScheduler(
    IServiceProvider services, TimeProvider clock, IOptions<SchedulerOptions> options, ILogger<ShortTermScheduler> log) : BackgroundService
{
    public const string Actor = "scheduler";

    private DateTimeOffset? _lastTick;
    private DateTimeOffset? _nextDue;

    /// <summary>
    /// Ticks every <see cref="SchedulerOptions.TickInterval"/> (to see new groups, policies and data sources) and, in between,
    /// wakes at the next due instant it knows of, so a backup is requested when it falls due rather than up to a tick later.
    /// A failed tick (database briefly down) is logged and retried: the previous tick mark only moves on success, so the next
    /// tick covers the same slots again, and what was already requested collides.
    /// <para>One worker schedules at a time: the one holding the schedulers' PostgreSQL advisory lock (a session lock on a
    /// connection of its own); the others try again every tick and take over when it stops or dies. The lock only saves the
    /// others' work: should two ever tick at once (a connection lost unnoticed), the deterministic ids still request each
    /// instant once.</para>
    /// </summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using var leadership = new Leadership(services, "short-term scheduler", log);
        while (!stoppingToken.IsCancellationRequested)
        {
            var leading = false;
            try
            {
                leading = await leadership.HoldAsync(stoppingToken);
                if (leading) await TickAsync(clock.GetUtcNow(), stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogError(e, "Scheduling tick failed; trying again in {Interval}", options.Value.TickInterval);
                await leadership.ResignAsync();
                leading = false;
            }
            var wait = options.Value.TickInterval;
            if (leading && _nextDue is { } next && next - clock.GetUtcNow() < wait) wait = next - clock.GetUtcNow();
            try
            {
                await Task.Delay(wait < TimeSpan.Zero ? TimeSpan.Zero : wait, clock, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Requests everything due after the previous tick (or <c>now - lookback</c>) up to and including <paramref name="now"/>.</summary>
    /// <returns>The recovery points this call started (not those another worker started first).</returns>
    public async Task<IReadOnlyList<Guid>> TickAsync(DateTimeOffset now, CancellationToken ct)
    {
        var earliest = now - options.Value.Lookback;
        var from = _lastTick is { } last && last > earliest ? last : earliest;
        if (from >= now) return [];

        // Resolved late: the store is built from the host's services like the vault copier's.
        var store = services.GetRequiredService<IDocumentStore>();
        var started = new List<Guid>();
        IReadOnlyList<ProtectionGroupView> groups;
        IReadOnlyList<DataSourceView> sources;
        await using (var query = store.QuerySession())
        {
            groups = await query.Query<ProtectionGroupView>().Where(g => g.ShortTermPolicy != null).ToListAsync(ct);
            var groupIds = groups.Select(g => g.Id).ToArray();
            // A data source removed from protection gets no more backups (one requested a moment before its removal is refused at claim).
            sources = groupIds.Length == 0 ? [] : await query.Query<DataSourceView>().Where(s => s.GroupId.IsOneOf(groupIds) && s.RemovedAt == null).ToListAsync(ct);
        }

        var byGroup = sources.ToLookup(s => s.GroupId);
        _nextDue = groups.Where(g => byGroup[g.Id].Any())
            .Select(g => ShortTermCalendar.RecoveryPoints(g.ShortTermPolicy!, now).Cast<DateTimeOffset?>().FirstOrDefault())
            .Where(at => at is not null).Min();
        var wanted = new List<(Guid GroupId, DataSourceView Source, DateTimeOffset At, Guid Id)>();
        foreach (var group in groups)
        {
            var due = ShortTermCalendar.RecoveryPoints(group.ShortTermPolicy!, from).TakeWhile(at => at <= now).ToList();
            foreach (var source in byGroup[group.Id])
                foreach (var at in due.Where(at => at > source.ProtectedAt))
                    wanted.Add((group.Id, source, at, ShortTermCalendar.BackupDueId(group.Id, source.Id, at)));
        }
        // Another worker usually got there first: skip the streams that exist (one query) rather than collide on each.
        var existing = wanted.Count == 0 ? [] : await ExistingStreamsAsync(store, wanted.Select(w => w.Id).ToArray(), ct);
        foreach (var (groupId, source, at, id) in wanted.Where(w => !existing.Contains(w.Id)))
        {
            ct.ThrowIfCancellationRequested();
            if (await RequestAsync(store, groupId, source, at, ct) is { } requested) started.Add(requested);
        }
        _lastTick = now;
        if (started.Count > 0) log.LogInformation("Scheduler requested {Count} recovery points due in ({From}, {Now}]", started.Count, from, now);
        return started;
    }

    private static async Task<HashSet<Guid>> ExistingStreamsAsync(IDocumentStore store, Guid[] ids, CancellationToken ct)
    {
        await using var connection = store.Storage.Database.CreateConnection();
        await connection.OpenAsync(ct);
        await using var command = new Npgsql.NpgsqlCommand(
            $"select id from \"{store.Options.Events.DatabaseSchemaName}\".mt_streams where id = any(@ids)", connection);
        command.Parameters.AddWithValue("ids", ids);
        var found = new HashSet<Guid>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) found.Add(reader.GetGuid(0));
        return found;
    }

    private async Task<Guid?> RequestAsync(IDocumentStore store, Guid groupId, DataSourceView source, DateTimeOffset dueAt, CancellationToken ct)
    {
        var id = ShortTermCalendar.BackupDueId(groupId, source.Id, dueAt);
        var metadata = new CommandMetadata { Actor = Actor, CorrelationId = $"backup-due:{id}" };
        // One session per stream: a collision on one does not lose the others.
        await using var session = metadata.ApplyTo(store.LightweightSession());
        session.Events.StartStream<RecoveryPoint>(id,
            new BackupRequested(id, source.Id, groupId, source.AgentId, source.Path, Actor, dueAt.ToUniversalTime()));
        try
        {
            await session.SaveChangesAsync(ct);
            return id;
        }
        catch (ExistingStreamIdCollisionException)
        {
            // Another worker (or an earlier tick of this one) requested it already.
            return null;
        }
    }
}
