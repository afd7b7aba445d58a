using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.Dispatching;
using Backup.Commands.GroupRuns;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using Backup.Commands.Synchronising;
using Backup.Projections.DataSources;
using Backup.Projections.ProtectionGroups;
using Backup.Storage.Contracts;
using Marten;
using Marten.Exceptions;
using Microsoft.Extensions.Options;

namespace Backup.Workers.Scheduling;

/// <summary>What one tick of the short-term scheduler started: backups (recovery points) and synchronisations.</summary>
public sealed record ScheduledWork(IReadOnlyList<Guid> Backups, IReadOnlyList<Guid> Syncs)
{
    public static readonly ScheduledWork None = new([], []);

    public bool IsEmpty => Backups.Count == 0 && Syncs.Count == 0;
}

/// <summary>
/// Turns short-term policies into backup and synchronisation requests. Every tick takes the due occurrences of each
/// group in (last tick, now] (at most <see cref="SchedulerOptions.Lookback"/> back) from <see cref="ShortTermCalendar"/>
/// and, for each data source of the group, starts either the recovery-point stream <see cref="ShortTermCalendar.BackupDueId"/>
/// with <see cref="BackupRequested"/> (a recovery-point time, which carries its synchronisation) or the synchronisation
/// stream <see cref="ShortTermCalendar.SyncDueId"/> with <see cref="SyncRequested"/> (a sync-only slot). The ids are
/// deterministic, so several workers ticking over the same window collide on the stream id and each due job is requested
/// exactly once; the agent's job queue (inline) picks it up as it does a manual request.
/// <para>The requests' times are the due instants, not the tick's clock, so every worker writes the same events; when
/// they were actually appended is the events' own timestamp.</para>
/// <para>A sync-only slot is skipped for a data source whose agent has not yet started a backup or synchronisation
/// requested for an earlier instant: that job, when it runs, brings the server's copy up to date anyway, and an agent
/// that is offline for a day collects one waiting synchronisation, not 96. (Earlier instants only, so a worker that sees
/// the slot's own request from another worker still collides on it rather than skipping it.)</para>
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
    /// <returns>The recovery points and synchronisations this call started (not those another worker started first).</returns>
    public async Task<ScheduledWork> TickAsync(DateTimeOffset now, CancellationToken ct)
    {
        var earliest = now - options.Value.Lookback;
        var from = _lastTick is { } last && last > earliest ? last : earliest;
        if (from >= now) return ScheduledWork.None;

        // Resolved late: the store is built from the host's services like the vault copier's.
        var store = services.GetRequiredService<IDocumentStore>();
        var started = new List<Guid>();
        var syncs = new List<Guid>();
        IReadOnlyList<ProtectionGroupView> groups;
        IReadOnlyList<DataSourceView> sources;
        Dictionary<Guid, DateTimeOffset> waitingSince;
        await using (var query = store.QuerySession())
        {
            groups = await query.Query<ProtectionGroupView>().Where(g => g.ShortTermPolicy != null).ToListAsync(ct);
            var groupIds = groups.Select(g => g.Id).ToArray();
            // A data source removed from protection gets no more backups (one requested a moment before its removal is refused at claim).
            sources = groupIds.Length == 0 ? [] : await query.Query<DataSourceView>().Where(s => s.GroupId.IsOneOf(groupIds) && s.RemovedAt == null).ToListAsync(ct);
            // The oldest backup or synchronisation still waiting for its agent, per data source.
            var waiting = await query.Query<QueuedJob>()
                .Where(j => j.State == QueuedJobState.Queued && j.Kind != JobKind.Restore && j.DataSourceId != Guid.Empty)
                .Select(j => new WaitingJob(j.DataSourceId, j.QueuedAt)).ToListAsync(ct);
            waitingSince = waiting.GroupBy(j => j.DataSourceId).ToDictionary(g => g.Key, g => g.Min(j => j.QueuedAt));
        }

        var byGroup = sources.ToLookup(s => s.GroupId);
        _nextDue = groups.Where(g => byGroup[g.Id].Any())
            .Select(g => ShortTermCalendar.Occurrences(g.ShortTermPolicy!, now).Select(o => (DateTimeOffset?)o.At).FirstOrDefault())
            .Where(at => at is not null).Min();
        var wanted = new List<(DataSourceView Source, DateTimeOffset At, bool Sync, Guid Id)>();
        var wantedRuns = new List<(Guid GroupId, DateTimeOffset At, Guid Id, HashSet<Guid> Members)>();
        foreach (var group in groups)
        {
            var due = ShortTermCalendar.Occurrences(group.ShortTermPolicy!, from).TakeWhile(o => o.At <= now).ToList();
            // A group that runs together: one group run per recovery-point time, of the data sources protected by then.
            if (group.RunsTogether)
                foreach (var (at, _) in due.Where(o => o.Work.HasFlag(DueWork.RecoveryPoint)))
                    if (byGroup[group.Id].Where(s => at > s.ProtectedAt).Select(s => s.Id).ToHashSet() is { Count: > 0 } members)
                        wantedRuns.Add((group.Id, at, ShortTermCalendar.GroupRunDueId(group.Id, at), members));
            foreach (var source in byGroup[group.Id])
                foreach (var (at, work) in due.Where(o => o.At > source.ProtectedAt))
                {
                    if (work.HasFlag(DueWork.RecoveryPoint) && group.RunsTogether)
                    {
                        waitingSince.TryAdd(source.Id, at); // requested by the group run
                        continue;
                    }
                    if (work.HasFlag(DueWork.RecoveryPoint))
                        wanted.Add((source, at, false, ShortTermCalendar.BackupDueId(group.Id, source.Id, at)));
                    else if (!(waitingSince.TryGetValue(source.Id, out var since) && since < at))
                        wanted.Add((source, at, true, ShortTermCalendar.SyncDueId(group.Id, source.Id, at)));
                    else continue;
                    // A tick catching up over several slots: what it requests waits too (occurrences come in order).
                    waitingSince.TryAdd(source.Id, at);
                }
        }
        // Another worker usually got there first: skip the streams that exist (one query) rather than collide on each.
        var existing = wanted.Count + wantedRuns.Count == 0 ? []
            : await ExistingStreamsAsync(store, [.. wanted.Select(w => w.Id), .. wantedRuns.Select(r => r.Id)], ct);
        foreach (var (groupId, at, id, members) in wantedRuns.Where(r => !existing.Contains(r.Id)))
        {
            ct.ThrowIfCancellationRequested();
            started.AddRange(await RequestGroupRunAsync(store, groupId, at, id, members, ct));
        }
        foreach (var (source, at, sync, id) in wanted.Where(w => !existing.Contains(w.Id)))
        {
            ct.ThrowIfCancellationRequested();
            if (await RequestAsync(store, source, at, sync, id, ct)) (sync ? syncs : started).Add(id);
        }
        _lastTick = now;
        if (started.Count + syncs.Count > 0)
            log.LogInformation("Scheduler requested {Count} recovery points and {Syncs} synchronisations due in ({From}, {Now}]", started.Count, syncs.Count, from, now);
        return new ScheduledWork(started, syncs);
    }

    private sealed record WaitingJob(Guid DataSourceId, DateTimeOffset QueuedAt);

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

    /// <returns>The members' recovery points this call requested (none: another worker, or an earlier tick, did; or no member is left).</returns>
    private static async Task<IReadOnlyList<Guid>> RequestGroupRunAsync(
        IDocumentStore store, Guid groupId, DateTimeOffset dueAt, Guid id, HashSet<Guid> members, CancellationToken ct)
    {
        var metadata = new CommandMetadata { Actor = Actor, CorrelationId = $"group-run-due:{id}" };
        await using var session = metadata.ApplyTo(store.LightweightSession());
        // The group's own stream, not the view: a data source removed a moment ago is no longer a member.
        var (group, _) = await session.LoadAsync<ProtectionGroup>(groupId, ProtectionGroup.Next, ct);
        if (group is null || !group.DataSourceIds.Any(members.Contains)) return [];
        var run = await GroupRunRequests.StartAsync(session, group, id, source => ShortTermCalendar.BackupDueId(groupId, source, dueAt),
            members.Contains, Actor, dueAt.ToUniversalTime(), ct);
        try
        {
            await session.SaveChangesAsync(ct);
            return [.. run.Members.Select(m => m.RecoveryPointId)];
        }
        catch (ExistingStreamIdCollisionException)
        {
            return [];
        }
    }

    /// <returns>Whether this call started the stream (false: another worker, or an earlier tick, did; or the source was removed just now).</returns>
    private static async Task<bool> RequestAsync(IDocumentStore store, DataSourceView view, DateTimeOffset dueAt, bool sync, Guid id, CancellationToken ct)
    {
        var metadata = new CommandMetadata { Actor = Actor, CorrelationId = $"{(sync ? "sync" : "backup")}-due:{id}" };
        // One session per stream: a collision on one does not lose the others.
        await using var session = metadata.ApplyTo(store.LightweightSession());
        // The same decision as "back up now" (the source's own stream, not the view that may lag): removed sources get nothing.
        var (source, _) = await session.LoadAsync<DataSource>(view.Id, DataSource.Next, ct);
        if (source?.Removed is not null) return false;
        if (sync)
            session.Events.StartStream<Synchronisation>(id, Synchronisation.Request(source, view.Id, id, Actor, dueAt.ToUniversalTime()));
        else
            session.Events.StartStream<RecoveryPoint>(id, RecoveryPoint.Request(source, view.Id, id, Actor, dueAt.ToUniversalTime()));
        try
        {
            await session.SaveChangesAsync(ct);
            return true;
        }
        catch (ExistingStreamIdCollisionException)
        {
            return false;
        }
    }
}
