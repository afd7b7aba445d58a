extern alias workers;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using workers::Backup.Workers.Scheduling;
using workers::Backup.Workers.TransferringToVault;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// The online schedule on real PostgreSQL: several schedulers make each online backup due exactly once, and a group with
/// an online policy has its vault copy wait for it, then take the latest recovery point of each data source not yet in the vault.
/// </summary>
public sealed class OnlineBackupTests(ApiFactory api) : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private static readonly DateTimeOffset Setup = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly ApiClient _client = new(api.CreateClient());
    private readonly List<ServiceProvider> _workers = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private OnlineScheduler Scheduler(TimeSpan lookback)
    {
        var services = new ServiceCollection().AddSingleton(TimeProvider.System).AddLogging();
        services.AddOptions<SchedulerOptions>().Configure(o => o.Lookback = lookback);
        services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, api.Schema)).UseLightweightSessions();
        services.AddSingleton<OnlineScheduler>();
        var provider = services.BuildServiceProvider();
        _workers.Add(provider);
        return provider.GetRequiredService<OnlineScheduler>();
    }

    private static OnlinePolicy Online(params string[] times) => new(
        [.. times.Select(t => TimeOnly.Parse(t, System.Globalization.CultureInfo.InvariantCulture))], OnlineSchedule.Daily, [], new GfsRetention(30, null, null, null));

    private static readonly ShortTermPolicy ShortTerm = new(5, SynchronisationMode.JustBeforeRecoveryPoint, null, [new TimeOnly(20, 0)], Enum.GetValues<DayOfWeek>(), "Europe/Amsterdam");

    private async Task<(Guid Group, List<Guid> Sources)> GroupAsync(OnlinePolicy? online, int dataSources)
    {
        var groupId = Guid.CreateVersion7();
        var agentId = Guid.CreateVersion7();
        await using var session = api.Store.LightweightSession();
        var created = ProtectionGroup.Create(groupId, $"group {groupId}", Setup);
        session.Events.StartStream<ProtectionGroup>(groupId, created);
        var group = ProtectionGroup.Next(null, created);
        var sources = new List<Guid>();
        for (var i = 0; i < dataSources; i++)
        {
            var (toGroup, toSource) = ProtectionGroup.AddDataSource(group, groupId, Guid.CreateVersion7(), agentId, DataSourceKind.Folder, $"/srv/{groupId:N}/{i}", Setup);
            session.Events.Append(groupId, toGroup);
            session.Events.StartStream<DataSource>(toSource.DataSourceId, toSource);
            group = ProtectionGroup.Next(group, toGroup);
            sources.Add(toSource.DataSourceId);
        }
        var shortTerm = ProtectionGroup.SetShortTermPolicy(group, groupId, ShortTerm, Setup);
        session.Events.Append(groupId, shortTerm);
        group = ProtectionGroup.Next(group, shortTerm);
        if (online is not null) session.Events.Append(groupId, ProtectionGroup.SetOnlinePolicy(group, groupId, online, Setup));
        await session.SaveChangesAsync(Ct);
        return (groupId, sources);
    }

    private async Task<Guid> CreatedAsync(Guid group, Guid dataSource, DateTimeOffset at, params string[] packs)
    {
        var id = Guid.CreateVersion7();
        var agent = Guid.CreateVersion7();
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.StartStream<RecoveryPoint>(id,
                new BackupRequested(id, dataSource, group, agent, "/srv", "scheduler", at),
                new BackupStarted(id, agent, at),
                new RecoveryPointCreated(id, dataSource, 1, 0, 0, 10, 10, packs, new string('0', 64), at));
            await session.SaveChangesAsync(Ct);
        }
        await _client.WaitForAsync($"/api/recovery-points/{id}", v => v.GetProperty("status").GetString() == "Created");
        return id;
    }

    [Fact]
    public async Task Three_schedulers_make_each_online_backup_due_exactly_once_at_the_policys_times()
    {
        var (group, _) = await GroupAsync(Online("01:00", "13:00"), dataSources: 1);
        // 10 March 2026, Amsterdam is UTC+1: 01:00 and 13:00 local are 00:00 and 12:00 UTC.
        var start = new DateTimeOffset(2026, 3, 10, 0, 30, 0, TimeSpan.Zero);
        var ticks = Enumerable.Range(0, 2 * 24 * 4).Select(i => start.AddMinutes(15 * i)).ToList();
        var schedulers = Enumerable.Range(0, 3).Select(_ => Scheduler(TimeSpan.FromHours(1))).ToList();

        var started = await Task.WhenAll(schedulers.Select(s => Task.Run(async () =>
        {
            var mine = new List<Guid>();
            foreach (var now in ticks) mine.AddRange(await s.TickAsync(now, Ct));
            return mine;
        }, Ct)));

        // The schedulers also serve the groups earlier tests of this class left in the schema: count this group's.
        var all = started.SelectMany(s => s).ToList();
        all.ShouldBeUnique("no due online backup of any group is appended twice");
        var expected = new[] { "2026-03-10T00:00Z", "2026-03-10T12:00Z", "2026-03-11T00:00Z", "2026-03-11T12:00Z", "2026-03-12T00:00Z" }
            .Select(t => OnlineCalendar.OnlineBackupDueId(group, DateTimeOffset.Parse(t, System.Globalization.CultureInfo.InvariantCulture))).ToHashSet();
        all = all.Where(expected.Contains).ToList();
        all.Count.ShouldBe(5, "each due online backup is appended by exactly one scheduler");
        await using var session = api.Store.QuerySession();
        var events = await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "online_backup_due.v1").ToListAsync(Ct);
        var due = events.Select(e => (OnlineBackupDue)e.Data).Where(d => d.GroupId == group).ToList();
        due.Select(d => d.DueAt.UtcDateTime.ToString("dd HH:mm", System.Globalization.CultureInfo.InvariantCulture)).Order()
            .ShouldBe(["10 00:00", "10 12:00", "11 00:00", "11 12:00", "12 00:00"]);
        due.Select(d => d.DueId).ShouldBe(all, ignoreOrder: true);
        due.ShouldAllBe(d => d.DueId == OnlineCalendar.OnlineBackupDueId(group, d.DueAt));
    }

    [Fact]
    public async Task Without_an_online_policy_a_new_recovery_point_is_copied_right_away()
    {
        var (_, sources) = await GroupAsync(online: null, dataSources: 1);

        await using var session = api.Store.QuerySession();
        (await VaultCopyPlan.CopiesRightAwayAsync(session, sources[0], Ct)).ShouldBeTrue();
    }

    [Fact]
    public async Task With_an_online_policy_the_copy_waits_and_takes_the_latest_point_of_each_data_source_not_in_the_vault()
    {
        var (group, sources) = await GroupAsync(Online("22:00"), dataSources: 3);
        var t = new DateTimeOffset(2026, 3, 10, 12, 0, 0, TimeSpan.Zero);
        await CreatedAsync(group, sources[0], t, "a");
        var latest0 = await CreatedAsync(group, sources[0], t.AddHours(2), "b", "c");
        var latest1 = await CreatedAsync(group, sources[1], t.AddHours(1), "d");
        var inVault = await CreatedAsync(group, sources[2], t.AddHours(3), "e");
        await CreatedAsync(group, sources[2], t.AddHours(1), "f");
        var transfer = VaultTransfer.IdFor(inVault);
        await using (var write = api.Store.LightweightSession())
        {
            write.Events.StartStream<VaultTransfer>(transfer,
                new VaultTransferStarted(transfer, inVault, 1, t), new PackUploadedToVault(transfer, inVault, "e", 1, t), new VaultTransferCompleted(transfer, inVault, 1, 1, t));
            await write.SaveChangesAsync(Ct);
        }
        await _client.WaitForAsync($"/api/recovery-points/{inVault}", v => v.GetProperty("tier").GetString() == "Both");

        await using var session = api.Store.QuerySession();
        (await VaultCopyPlan.CopiesRightAwayAsync(session, sources[0], Ct)).ShouldBeFalse();
        var due = await VaultCopyPlan.DueOnlineAsync(session, group, Ct);
        due.Select(p => p.Id).ShouldBe([latest0, latest1], ignoreOrder: true);
        due.Single(p => p.Id == latest0).PackIds.ShouldBe(["b", "c"]);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers) await worker.DisposeAsync();
    }
}
