extern alias workers;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Projections.RecoveryPoints;
using Backup.Storage.Contracts;
using Marten;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using workers::Backup.Workers.Retention;
using workers::Backup.Workers.Scheduling;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// A month of a policy in seconds: the API, the scheduler and retention all run on one manual clock, an agent client takes
/// every backup the scheduler asks for over the real protocol, and at the end the recovery points are exactly the
/// policy's — every time of every day, once — and only the last week of them is still on disk.
/// </summary>
public sealed class MonthOfSchedulesTests : IClassFixture<ApiFactory>, IAsyncDisposable
{
    // Two recovery points a day at 09:00 and 21:00 Amsterdam time (08:00 and 20:00 UTC in winter), kept 7 days.
    private static readonly object Policy = new
    {
        retentionDays = 7, synchronisation = "JustBeforeRecoveryPoint", syncIntervalMinutes = (int?)null,
        recoveryPointTimes = new[] { "09:00", "21:00" }, recoveryPointDays = Enum.GetNames<DayOfWeek>(), timeZone = "Europe/Amsterdam",
    };

    private static readonly DateTimeOffset Start = new(2027, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly ApiFactory _factory;
    private readonly ManualClock _clock = new(Start);
    private readonly WebApplicationFactory<Program> _api;
    private readonly ApiClient _client;
    private readonly List<ServiceProvider> _workers = [];

    public MonthOfSchedulesTests(ApiFactory factory)
    {
        _factory = factory;
        _api = factory.WithHost(b => b.ConfigureServices(s => s.AddSingleton<TimeProvider>(_clock)));
        _client = new ApiClient(_api.CreateClient());
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private T Worker<T>() where T : class
    {
        var services = new ServiceCollection().AddSingleton<TimeProvider>(_clock).AddLogging();
        services.AddOptions<SchedulerOptions>().Configure(o => o.Lookback = TimeSpan.FromHours(13));
        services.AddOptions<RetentionOptions>();
        services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, _factory.Schema)).UseLightweightSessions();
        services.AddSingleton<T>();
        var provider = services.BuildServiceProvider();
        _workers.Add(provider);
        return provider.GetRequiredService<T>();
    }

    /// <summary>The agent's side of one backup: claim it, upload a pack of new data and a tree, commit.</summary>
    private async Task TakeBackupAsync(EnrolAgentResponse agent, Guid rp)
    {
        var poll = await _client.PollAsync(agent);
        poll.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await poll.Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!.RecoveryPointId.ShouldBe(rp);
        var data = TestPacks.Random(2000);
        var tree = TestPacks.Random(100);
        await _client.UploadPackAsync(agent, rp, data);
        await _client.UploadPackAsync(agent, rp, tree);
        var commit = await _client.CommitAsync(agent, rp, new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64(data.Chunks), 1, 0, 2000));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task A_month_of_schedules_makes_exactly_the_policys_recovery_points_and_retention_keeps_the_last_week_on_disk()
    {
        var agent = await _client.EnrolAsync($"machine-{Guid.NewGuid():N}");
        var group = await _client.CreateGroupAsync($"month-{Guid.NewGuid():N}");
        var policy = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{group}/short-term-policy") { Content = JsonContent.Create(Policy) };
        policy.Headers.TryAddWithoutValidation("If-Match", "*");
        (await _client.Http.SendAsync(policy, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var source = await _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");

        var scheduler = Worker<ShortTermScheduler>();
        var retention = Worker<RetentionWorker>();
        var end = Start.AddDays(30);
        var taken = new List<Guid>();
        while (_clock.GetUtcNow() < end)
        {
            _clock.Advance(TimeSpan.FromHours(3));
            var now = _clock.GetUtcNow();
            foreach (var rp in (await scheduler.TickAsync(now, Ct)).Backups)
            {
                await TakeBackupAsync(agent, rp);
                taken.Add(rp);
            }
            await retention.ExpireAsync(now, Ct);
        }

        // Every 09:00 and 21:00 of the 30 days, once each, requested for its due instant and created.
        var expected = Enumerable.Range(0, 30).SelectMany(d => new[] { Start.AddDays(d).AddHours(8), Start.AddDays(d).AddHours(20) }).ToList();
        taken.Count.ShouldBe(60);
        await using var session = _factory.Store.QuerySession();
        var requests = new List<BackupRequested>();
        foreach (var rp in taken)
            requests.Add((await session.Events.FetchStreamAsync(rp, token: Ct)).Select(e => e.Data).OfType<BackupRequested>().Single());
        requests.Select(r => r.RequestedAt).Order().ShouldBe(expected);
        requests.ShouldAllBe(r => r.DataSourceId == source && r.RequestedBy == ShortTermScheduler.Actor);

        // Retention, once the recovery-point view has caught up: the last 7 days stay on disk, everything older expired.
        List<RecoveryPointView> points = [];
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            await retention.ExpireAsync(end, Ct);
            points = [.. await session.Query<RecoveryPointView>().Where(r => r.DataSourceId == source).ToListAsync(Ct)];
            if (points.Count == 60 && points.All(p => p.Status == RecoveryPointStatus.Created && p.OnDisk == (p.CreatedAt > end.AddDays(-7)))) break;
            DateTime.UtcNow.ShouldBeLessThan(deadline, $"{points.Count} points; on disk: {points.Count(p => p.OnDisk)}");
            await Task.Delay(250, Ct);
        }
        points.Count(p => p.OnDisk).ShouldBe(14);
        points.Where(p => !p.OnDisk).ShouldAllBe(p => p.ExpiredFromDiskAt != null);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var provider in _workers) await provider.DisposeAsync();
        await _api.DisposeAsync();
    }
}
