extern alias workers;
using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using workers::Backup.Workers.Scheduling;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// The short-term scheduler against a real PostgreSQL: due recovery points become backup requests exactly once,
/// even with several workers ticking over the same window, and exactly at the policy's instants.
/// </summary>
public sealed class ShortTermSchedulerTests : IAsyncLifetime
{
    private readonly string _schema = TestServices.NewSchema("sched");
    private readonly List<ServiceProvider> _workers = [];
    private DocumentStore _store = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // Long ago enough that every window in these tests is after the data sources were protected.
    private static readonly DateTimeOffset Setup = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public async ValueTask InitializeAsync()
    {
        _store = DocumentStore.For(o => o.ConfigureCatalog(TestServices.Postgres, _schema));
        await _store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
    }

    /// <summary>A worker of its own: its own service provider, document store and connection pool, like another process.</summary>
    private ShortTermScheduler Worker(TimeProvider clock, TimeSpan lookback, TimeSpan? tick = null)
    {
        var services = new ServiceCollection()
            .AddSingleton(clock)
            .AddLogging();
        services.AddOptions<SchedulerOptions>().Configure(o =>
        {
            o.Lookback = lookback;
            if (tick is { } interval) o.TickInterval = interval;
        });
        services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, _schema)).UseLightweightSessions();
        services.AddSingleton<ShortTermScheduler>();
        var provider = services.BuildServiceProvider();
        _workers.Add(provider);
        return provider.GetRequiredService<ShortTermScheduler>();
    }

    private async Task<Guid> GroupAsync(ShortTermPolicy? policy, int dataSources)
    {
        var groupId = Guid.CreateVersion7();
        var agentId = Guid.CreateVersion7();
        await using var session = _store.LightweightSession();
        var created = ProtectionGroup.Create(groupId, $"group {groupId}", Setup);
        session.Events.StartStream<ProtectionGroup>(groupId, created);
        var group = ProtectionGroup.Next(null, created);
        for (var i = 0; i < dataSources; i++)
        {
            var (toGroup, toSource) = ProtectionGroup.AddDataSource(group, groupId, Guid.CreateVersion7(), agentId, DataSourceKind.Folder, $"/srv/data/{groupId:N}/{i}", Setup);
            session.Events.Append(groupId, toGroup);
            session.Events.StartStream<DataSource>(toSource.DataSourceId, toSource);
            group = ProtectionGroup.Next(group, toGroup);
        }
        if (policy is not null) session.Events.Append(groupId, ProtectionGroup.SetShortTermPolicy(group, groupId, policy, Setup));
        await session.SaveChangesAsync(Ct);
        return groupId;
    }

    private async Task<List<BackupRequested>> BackupRequestsAsync()
    {
        await using var session = _store.QuerySession();
        var events = await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "backup_requested.v1").ToListAsync(Ct);
        return [.. events.Select(e => (BackupRequested)e.Data)];
    }

    private async Task<long> RecoveryPointStreamsAsync()
    {
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand($"SELECT count(DISTINCT stream_id) FROM \"{_schema}\".mt_events WHERE type = 'backup_requested.v1'", connection);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static ShortTermPolicy Policy(string zone, params string[] times) => new(
        RetentionDays: 5, SynchronisationMode.Interval, SyncIntervalMinutes: 60,
        [.. times.Select(t => TimeOnly.Parse(t, System.Globalization.CultureInfo.InvariantCulture))],
        Enum.GetValues<DayOfWeek>(), zone);

    [Fact]
    public async Task Three_workers_ticking_over_the_same_window_request_each_due_recovery_point_exactly_once()
    {
        var policies = new[] { Policy("Europe/Amsterdam", "00:00", "06:00", "12:00", "18:00"), Policy("America/New_York", "01:30", "13:15") };
        var groups = new List<(Guid Id, ShortTermPolicy Policy, int Sources)>();
        foreach (var (policy, sources) in policies.Zip([3, 2]))
            groups.Add((await GroupAsync(policy, sources), policy, sources));

        // Two days, ticked every 20 minutes by each worker with a lookback that covers the first tick's gap.
        var start = new DateTimeOffset(2026, 3, 10, 0, 0, 0, TimeSpan.Zero);
        var end = start.AddDays(2);
        var lookback = TimeSpan.FromHours(1);
        var ticks = Enumerable.Range(0, (int)((end - start) / TimeSpan.FromMinutes(20)) + 1).Select(i => start.AddMinutes(20 * i)).ToList();
        var windowStart = start - lookback;
        var expected = groups.SelectMany(g => ShortTermCalendar.RecoveryPoints(g.Policy, windowStart).TakeWhile(at => at <= end)
                .SelectMany(_ => Enumerable.Repeat(g.Id, g.Sources)))
            .Count();
        expected.ShouldBeGreaterThan(20);

        var workers = Enumerable.Range(0, 3).Select(_ => Worker(new ManualClock(start), lookback)).ToList();
        var started = await Task.WhenAll(workers.Select(w => Task.Run(async () =>
        {
            var mine = new List<Guid>();
            foreach (var now in ticks) mine.AddRange((await w.TickAsync(now, Ct)).Backups);
            return mine;
        }, Ct)));

        var all = started.SelectMany(s => s).ToList();
        all.Count.ShouldBe(expected, "each due recovery point is started by exactly one worker");
        all.ShouldBeUnique();
        var requests = await BackupRequestsAsync();
        requests.Count.ShouldBe(expected);
        requests.Select(r => r.RecoveryPointId).ShouldBeUnique();
        (await RecoveryPointStreamsAsync()).ShouldBe(expected);
        requests.Select(r => r.RecoveryPointId).ShouldBe(all, ignoreOrder: true);
        foreach (var r in requests)
        {
            r.RequestedBy.ShouldBe(ShortTermScheduler.Actor);
            r.RecoveryPointId.ShouldBe(ShortTermCalendar.BackupDueId(r.GroupId, r.DataSourceId, r.RequestedAt));
        }

        // A fourth worker started later over the same window finds nothing left to do.
        var late = Worker(new ManualClock(end), end - windowStart);
        (await late.TickAsync(end, Ct)).IsEmpty.ShouldBeTrue();
        (await BackupRequestsAsync()).Count.ShouldBe(expected);
    }

    [Fact]
    public async Task A_group_that_runs_together_gets_one_group_run_per_recovery_point_time_exactly_once_across_workers()
    {
        var policy = Policy("Europe/Amsterdam", "00:00", "12:00");
        var groupId = await GroupAsync(policy, 3);
        await using (var session = _store.LightweightSession())
        {
            var (group, _) = await session.LoadAsync<ProtectionGroup>(groupId, ProtectionGroup.Next, Ct);
            session.Events.Append(groupId, ProtectionGroup.SetGroupRuns(group, groupId, true, Setup));
            await session.SaveChangesAsync(Ct);
        }
        var start = new DateTimeOffset(2026, 3, 10, 0, 0, 0, TimeSpan.Zero);
        var end = start.AddDays(1);
        var lookback = TimeSpan.FromHours(1);
        var instants = ShortTermCalendar.RecoveryPoints(policy, start - lookback).TakeWhile(at => at <= end).ToList();
        instants.Count.ShouldBe(2);
        var ticks = Enumerable.Range(0, 24 * 3 + 1).Select(i => start.AddMinutes(20 * i)).ToList();

        var workers = Enumerable.Range(0, 2).Select(_ => Worker(new ManualClock(start), lookback)).ToList();
        var started = await Task.WhenAll(workers.Select(w => Task.Run(async () =>
        {
            var mine = new List<Guid>();
            foreach (var now in ticks) mine.AddRange((await w.TickAsync(now, Ct)).Backups);
            return mine;
        }, Ct)));

        await using var query = _store.QuerySession();
        var runs = (await query.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "group_run_requested.v1").ToListAsync(Ct))
            .Select(e => (Backup.Commands.GroupRuns.GroupRunRequested)e.Data).OrderBy(r => r.RequestedAt).ToList();
        runs.Select(r => r.RequestedAt).ShouldBe(instants, "one run per recovery-point time");
        runs.Select(r => r.RunId).ShouldBe(instants.Select(at => ShortTermCalendar.GroupRunDueId(groupId, at)));
        runs.ShouldAllBe(r => r.Members.Count == 3 && r.RequestedBy == ShortTermScheduler.Actor);
        var members = runs.SelectMany(r => r.Members.Select(m => (Run: r, m.DataSourceId, m.RecoveryPointId))).ToList();
        members.ShouldAllBe(m => m.RecoveryPointId == ShortTermCalendar.BackupDueId(groupId, m.DataSourceId, m.Run.RequestedAt));
        started.SelectMany(s => s).ShouldBe(members.Select(m => m.RecoveryPointId), ignoreOrder: true, "each member is requested by exactly one worker");
        var requests = await BackupRequestsAsync();
        requests.Select(r => r.RecoveryPointId).ShouldBe(members.Select(m => m.RecoveryPointId), ignoreOrder: true, "no point of its own besides the runs'");
        foreach (var member in members)
            (await query.Events.FetchStreamAsync(member.RecoveryPointId, token: Ct)).Select(e => e.Data).OfType<Backup.Commands.GroupRuns.BackupInGroupRun>()
                .ShouldHaveSingleItem().RunId.ShouldBe(member.Run.RunId);
    }

    [Fact]
    public async Task A_fake_clock_driving_one_day_requests_exactly_the_policys_recovery_points()
    {
        // Hourly syncs, recovery points at 00:00, 08:00, 12:30 and 18:00 Amsterdam time (CET, UTC+1, on 10 March 2026).
        var groupId = await GroupAsync(Policy("Europe/Amsterdam", "00:00", "08:00", "12:30", "18:00"), 1);
        var midnight = new DateTimeOffset(2026, 3, 10, 0, 0, 0, TimeSpan.FromHours(1));
        var clock = new ManualClock(midnight);
        var worker = Worker(clock, TimeSpan.FromHours(1));

        // The first tick at local midnight looks back an hour: the midnight slot that starts the day is due at it.
        // Stop before the next midnight so the day's recovery points, not tomorrow's, are what is counted.
        var step = TimeSpan.FromMinutes(7); // ticks that do not line up with the slots
        var started = new List<Guid>();
        started.AddRange((await worker.TickAsync(clock.GetUtcNow(), Ct)).Backups);
        while (clock.GetUtcNow() + step < midnight.AddDays(1))
        {
            clock.Advance(step);
            started.AddRange((await worker.TickAsync(clock.GetUtcNow(), Ct)).Backups);
        }

        var utc = (string s) => DateTimeOffset.Parse(s, System.Globalization.CultureInfo.InvariantCulture);
        DateTimeOffset[] expected = [utc("2026-03-09T23:00:00Z"), utc("2026-03-10T07:00:00Z"), utc("2026-03-10T11:30:00Z"), utc("2026-03-10T17:00:00Z")];
        var requests = await BackupRequestsAsync();
        requests.Select(r => r.RequestedAt).Order().ToArray().ShouldBe(expected, "no sync-only slot becomes a recovery point");
        requests.ShouldAllBe(r => r.GroupId == groupId);
        started.Count.ShouldBe(expected.Length);
    }

    [Fact]
    public async Task Sync_only_slots_become_synchronisations_and_an_agent_that_has_not_started_its_last_job_gets_no_more()
    {
        // Hourly syncs, recovery points at 00:00 and 12:00 UTC. Two workers tick every 20 minutes; until noon the "agent"
        // claims whatever is queued after each tick (its started events, as a claim appends them), then it goes offline.
        var groupId = await GroupAsync(Policy("UTC", "00:00", "12:00"), 1);
        var midnight = new DateTimeOffset(2026, 3, 10, 0, 0, 0, TimeSpan.Zero);
        var workers = new[] { Worker(new ManualClock(midnight), TimeSpan.FromMinutes(30)), Worker(new ManualClock(midnight), TimeSpan.FromMinutes(30)) };
        var syncs = new List<Guid>();
        var backups = new List<Guid>();
        for (var now = midnight; now < midnight.AddDays(1); now = now.AddMinutes(20))
        {
            var at = now;
            foreach (var work in await Task.WhenAll(workers.Select(w => w.TickAsync(at, Ct))))
            {
                syncs.AddRange(work.Syncs);
                backups.AddRange(work.Backups);
            }
            if (now < midnight.AddHours(12)) await ClaimQueuedAsync(now);
        }

        var requested = await SyncRequestsAsync();
        DateTimeOffset[] expected = [.. Enumerable.Range(1, 11).Select(h => midnight.AddHours(h))];
        requested.Select(r => r.RequestedAt).Order().ToArray().ShouldBe(expected,
            "every sync-only hour while the agent takes its jobs; none from 13:00, while the noon backup still waits for it");
        requested.ShouldAllBe(r => r.GroupId == groupId && r.RequestedBy == ShortTermScheduler.Actor);
        requested.ShouldAllBe(r => r.SyncId == ShortTermCalendar.SyncDueId(r.GroupId, r.DataSourceId, r.RequestedAt));
        syncs.ShouldBe(requested.Select(r => r.SyncId), ignoreOrder: true, "each requested by exactly one of the two workers");
        (await BackupRequestsAsync()).Select(r => r.RequestedAt).Order().ToArray().ShouldBe([midnight, midnight.AddHours(12)]);
        backups.Count.ShouldBe(2);
    }

    /// <summary>What an agent's claims would append: every queued backup and synchronisation starts.</summary>
    private async Task ClaimQueuedAsync(DateTimeOffset now)
    {
        await using var session = _store.LightweightSession();
        var queued = await session.Query<Backup.Commands.Dispatching.QueuedJob>()
            .Where(j => j.State == Backup.Commands.Dispatching.QueuedJobState.Queued).ToListAsync(Ct);
        foreach (var job in queued)
            session.Events.Append(job.Id, job.Kind == Backup.Storage.Contracts.JobKind.Synchronisation
                ? new Backup.Commands.Synchronising.SyncStarted(job.Id, job.AgentId, now)
                : new BackupStarted(job.Id, job.AgentId, now));
        await session.SaveChangesAsync(Ct);
    }

    private async Task<List<Backup.Commands.Synchronising.SyncRequested>> SyncRequestsAsync()
    {
        await using var session = _store.QuerySession();
        var events = await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "sync_requested.v1").ToListAsync(Ct);
        return [.. events.Select(e => (Backup.Commands.Synchronising.SyncRequested)e.Data)];
    }

    [Fact]
    public async Task A_data_source_removed_from_protection_gets_no_new_backup_requests()
    {
        var groupId = await GroupAsync(Policy("Europe/Amsterdam", "00:00", "12:00"), 2);
        Guid[] sources;
        await using (var session = _store.LightweightSession())
        {
            sources = [.. (await session.Query<Projections.DataSources.DataSourceView>().Where(s => s.GroupId == groupId).ToListAsync(Ct)).Select(s => s.Id)];
            sources.Length.ShouldBe(2);
            var (source, version) = await session.LoadAsync<DataSource>(sources[0], DataSource.Next, Ct);
            var (removed, fromGroup) = DataSource.Remove(source, sources[0], DataOnRemoval.Retain, Setup.AddDays(1));
            session.AppendExpected(sources[0], version, removed);
            session.Events.Append(groupId, fromGroup);
            await session.SaveChangesAsync(Ct);
        }

        var now = new DateTimeOffset(2026, 3, 10, 12, 30, 0, TimeSpan.Zero);
        var worker = Worker(new ManualClock(now), TimeSpan.FromDays(1));
        var started = (await worker.TickAsync(now, Ct)).Backups;

        var requests = (await BackupRequestsAsync()).Where(r => r.GroupId == groupId).ToList();
        requests.Count.ShouldBe(2, "the remaining data source's two recovery points of the last day");
        requests.ShouldAllBe(r => r.DataSourceId == sources[1]);
        started.Count.ShouldBe(2);
    }

    [Fact]
    public async Task A_group_without_a_short_term_policy_schedules_nothing()
    {
        await GroupAsync(policy: null, dataSources: 2);
        var now = new DateTimeOffset(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);
        var worker = Worker(new ManualClock(now), TimeSpan.FromDays(2));

        (await worker.TickAsync(now, Ct)).IsEmpty.ShouldBeTrue();
        (await worker.TickAsync(now.AddDays(1), Ct)).IsEmpty.ShouldBeTrue();
        (await BackupRequestsAsync()).ShouldBeEmpty();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers) await worker.DisposeAsync();
        await _store.DisposeAsync();
        await TestServices.DropSchemaAsync(_schema);
    }

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        private DateTimeOffset _now = now;
        public override DateTimeOffset GetUtcNow() => _now;
        public void Advance(TimeSpan by) => _now += by;
    }

    /// <summary>A jumping clock that remembers every wait asked of it.</summary>
    private sealed class WaitLog(DateTimeOffset start) : TimeProvider
    {
        private readonly Backup.UnitTests.Support.JumpingClock _clock = new(start);
        public System.Collections.Concurrent.ConcurrentQueue<TimeSpan> Waits { get; } = new();
        public override DateTimeOffset GetUtcNow() => _clock.GetUtcNow();
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Waits.Enqueue(dueTime);
            return _clock.CreateTimer(callback, state, dueTime, period);
        }
    }

    [Fact]
    public async Task The_running_scheduler_wakes_at_the_next_due_instant_instead_of_waiting_for_its_next_tick()
    {
        await GroupAsync(Policy("UTC", "09:00"), 2);
        var clock = new WaitLog(new DateTimeOffset(2026, 3, 10, 8, 59, 30, TimeSpan.Zero));
        var worker = Worker(clock, TimeSpan.FromMinutes(5), tick: TimeSpan.FromHours(1));
        await worker.StartAsync(Ct);
        try
        {
            var due = new DateTimeOffset(2026, 3, 10, 9, 0, 0, TimeSpan.Zero);
            for (var i = 0; i < 200 && (await BackupRequestsAsync()).Count(r => r.RequestedAt == due) < 2; i++) await Task.Delay(50, Ct);
            (await BackupRequestsAsync()).Count(r => r.RequestedAt == due).ShouldBe(2);
        }
        finally
        {
            await worker.StopAsync(CancellationToken.None);
        }
        // Its first wait was the 30 s to 09:00, not the hour to its next tick; later ones never exceed the tick.
        clock.Waits.First().ShouldBe(TimeSpan.FromSeconds(30));
        clock.Waits.ShouldAllBe(w => w <= TimeSpan.FromHours(1));
    }

    [Fact]
    public async Task One_running_scheduler_leads_and_another_takes_over_when_it_stops()
    {
        await GroupAsync(Policy("UTC", "09:00", "10:00"), 2);
        var clock = new ManualClock(new DateTimeOffset(2026, 3, 11, 8, 50, 0, TimeSpan.Zero));
        var first = Worker(clock, TimeSpan.FromMinutes(5), tick: TimeSpan.FromMilliseconds(200));
        var second = Worker(clock, TimeSpan.FromMinutes(5), tick: TimeSpan.FromMilliseconds(200));
        async Task<int> DueAsync(int hour, int expected)
        {
            var at = new DateTimeOffset(2026, 3, 11, hour, 0, 0, TimeSpan.Zero);
            for (var i = 0; i < 150 && (await BackupRequestsAsync()).Count(r => r.RequestedAt == at) < expected; i++) await Task.Delay(100, Ct);
            return (await BackupRequestsAsync()).Count(r => r.RequestedAt == at);
        }

        await first.StartAsync(Ct);
        clock.Advance(TimeSpan.FromMinutes(10.5)); // 09:00:30
        (await DueAsync(9, 2)).ShouldBe(2);
        await second.StartAsync(Ct); // the lock is held: it stands by
        await first.StopAsync(CancellationToken.None); // its connection, and so the lock, goes
        clock.Advance(TimeSpan.FromHours(1)); // 10:00:30: only the second is running
        try
        {
            (await DueAsync(10, 2)).ShouldBe(2);
        }
        finally
        {
            await second.StopAsync(CancellationToken.None);
        }
        (await BackupRequestsAsync()).Count.ShouldBe(4);
    }
}
