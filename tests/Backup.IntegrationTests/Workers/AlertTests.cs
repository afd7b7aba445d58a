extern alias workers;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.Commands.Alerts;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Synchronising;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Marten;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using workers::Backup.Workers.Alerting;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// Alerts on real PostgreSQL: the monitor (several, racing, as in several worker processes) raises each alert once when its
/// condition holds and resolves it when the condition clears; the API lists them. The API and the monitors share a manual
/// clock, so days pass in a line of code.
/// </summary>
public sealed class AlertTests : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private static readonly TimeSpan AgentLostAfter = TimeSpan.FromMinutes(15);
    private readonly ApiFactory _factory;
    private readonly WebApplicationFactory<Program> _api;
    private readonly ApiClient _client;
    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);
    private readonly List<ServiceProvider> _workers = [];

    public AlertTests(ApiFactory factory)
    {
        _factory = factory;
        _api = factory.WithHost(b => b.ConfigureServices(s => s.AddSingleton<TimeProvider>(_clock)));
        _client = new ApiClient(_api.CreateClient());
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDocumentStore Store => _api.Services.GetRequiredService<IDocumentStore>();

    /// <summary>A monitor of its own: its own service provider, document store and connection pool, like another worker process.</summary>
    private AlertMonitor Monitor()
    {
        var services = new ServiceCollection().AddSingleton<TimeProvider>(_clock).AddLogging();
        services.AddOptions<AlertOptions>().Configure(o => o.AgentLostAfter = AgentLostAfter);
        services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, _factory.Schema)).UseLightweightSessions();
        services.AddSingleton<AlertMonitor>();
        var provider = services.BuildServiceProvider();
        _workers.Add(provider);
        return provider.GetRequiredService<AlertMonitor>();
    }

    /// <summary>Two monitors checking at the same instant, as two workers do.</summary>
    private async Task<List<AlertChange>> CheckAsync(Guid subject)
    {
        var now = _clock.GetUtcNow();
        var results = await Task.WhenAll(Monitor().CheckAsync(now, Ct), Monitor().CheckAsync(now, Ct));
        return [.. results.SelectMany(r => r).Where(c => c.SubjectId == subject)];
    }

    private async Task<List<object>> AlertEventsAsync(AlertKind kind, Guid subject)
    {
        await using var session = Store.QuerySession();
        return [.. (await session.Events.FetchStreamAsync(Alert.IdFor(kind, subject), token: Ct)).Select(e => e.Data)];
    }

    private async Task<List<JsonElement>> AlertsAsync(string query) =>
        [.. (await _client.GetJsonAsync("/api/alerts" + query)).EnumerateArray()];

    private async Task<(Guid Group, Guid DataSource, Guid Agent)> DataSourceAsync(int? alertThresholdDays = null)
    {
        var agent = await _client.EnrolAsync($"machine-{Guid.NewGuid():N}");
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        if (alertThresholdDays is { } days)
        {
            var request = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{group}/alert-threshold")
            {
                Content = JsonContent.Create(new { daysWithoutRecoveryPoint = days }),
            };
            request.Headers.TryAddWithoutValidation("If-Match", "*");
            var response = await _client.Http.SendAsync(request, Ct);
            response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        }
        return (group, source, agent.AgentId);
    }

    /// <summary>A backup run that ended (created, or failed with <paramref name="failure"/>) now, as the API records it; waits for its view.</summary>
    private async Task<Guid> FinishedBackupAsync((Guid Group, Guid DataSource, Guid Agent) source, string? failure = null)
    {
        var id = Guid.CreateVersion7();
        var now = _clock.GetUtcNow();
        await using (var session = Store.LightweightSession())
        {
            session.Events.StartStream<RecoveryPoint>(id,
                new BackupRequested(id, source.DataSource, source.Group, source.Agent, "/srv", "operator", now),
                new BackupStarted(id, source.Agent, now),
                failure is null
                    ? new RecoveryPointCreated(id, source.DataSource, 1, 0, 0, 10, 10, [], new string('0', 64), now)
                    : new RecoveryPointFailed(id, failure, now));
            await session.SaveChangesAsync(Ct);
        }
        var status = failure is null ? "Created" : "Failed";
        await _client.WaitForAsync($"/api/recovery-points/{id}", v => v.GetProperty("status").GetString() == status);
        return id;
    }

    [Fact]
    public async Task Removing_a_data_source_from_protection_resolves_its_alerts_and_raises_no_more()
    {
        var source = await DataSourceAsync(alertThresholdDays: 1);
        await FinishedBackupAsync(source, failure: "disk on fire");
        _clock.Advance(TimeSpan.FromDays(2));
        (await CheckAsync(source.DataSource)).Select(c => (c.Kind, c.Raised)).ShouldBe(
            [(AlertKind.BackupFailed, true), (AlertKind.MissedBackup, true)], ignoreOrder: true);

        var removal = await _client.Http.DeleteAsync($"/api/data-sources/{source.DataSource}?data=retain", Ct);
        removal.StatusCode.ShouldBe(HttpStatusCode.OK, await removal.Content.ReadAsStringAsync(Ct));

        (await CheckAsync(source.DataSource)).Select(c => (c.Kind, c.Raised)).ShouldBe(
            [(AlertKind.BackupFailed, false), (AlertKind.MissedBackup, false)], ignoreOrder: true);
        (await AlertEventsAsync(AlertKind.MissedBackup, source.DataSource))[^1].ShouldBeOfType<AlertResolved>().Resolution.ShouldContain("removed from protection");
        _clock.Advance(TimeSpan.FromDays(5));
        (await CheckAsync(source.DataSource)).ShouldBeEmpty("a data source no longer protected misses nothing");
    }

    [Fact]
    public async Task No_recovery_point_past_the_groups_threshold_raises_a_missed_backup_alert_once_and_the_next_one_resolves_it()
    {
        var source = await DataSourceAsync(alertThresholdDays: 1);

        _clock.Advance(TimeSpan.FromHours(23));
        (await CheckAsync(source.DataSource)).ShouldBeEmpty("within the threshold");

        _clock.Advance(TimeSpan.FromHours(2));
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.MissedBackup, source.DataSource, Raised: true)]);
        (await CheckAsync(source.DataSource)).ShouldBeEmpty("a condition that persists is one alert");
        (await AlertEventsAsync(AlertKind.MissedBackup, source.DataSource)).ShouldHaveSingleItem().ShouldBeOfType<AlertRaised>();

        var active = (await AlertsAsync($"?status=Active&dataSourceId={source.DataSource}")).ShouldHaveSingleItem();
        active.GetProperty("kind").GetString().ShouldBe("MissedBackup");
        active.GetProperty("groupId").GetGuid().ShouldBe(source.Group);
        active.GetProperty("message").GetString()!.ShouldContain("threshold 1 days");

        var rp = await FinishedBackupAsync(source);
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.MissedBackup, source.DataSource, Raised: false)]);
        (await AlertEventsAsync(AlertKind.MissedBackup, source.DataSource))[^1].ShouldBeOfType<AlertResolved>().Resolution.ShouldContain(rp.ToString());
        (await AlertsAsync($"?status=Active&dataSourceId={source.DataSource}")).ShouldBeEmpty();
        var resolved = (await AlertsAsync($"?status=Resolved&dataSourceId={source.DataSource}")).ShouldHaveSingleItem();
        resolved.GetProperty("resolvedAt").GetDateTimeOffset().ShouldBe(_clock.GetUtcNow(), TimeSpan.FromMilliseconds(1));

        // Another day and more without a recovery point: the same alert comes back.
        _clock.Advance(TimeSpan.FromDays(1.5));
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.MissedBackup, source.DataSource, Raised: true)]);
        var again = (await AlertsAsync($"?status=Active&dataSourceId={source.DataSource}")).ShouldHaveSingleItem();
        again.GetProperty("occurrences").GetInt32().ShouldBe(2);
        (await AlertEventsAsync(AlertKind.MissedBackup, source.DataSource)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task A_failed_backup_raises_an_alert_with_its_reason_and_the_next_recovery_point_resolves_it()
    {
        var source = await DataSourceAsync();
        var failed = await FinishedBackupAsync(source, "agent lost: lease expired 3 times");

        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.BackupFailed, source.DataSource, Raised: true)]);
        var alert = (await AlertsAsync($"?status=Active&dataSourceId={source.DataSource}")).ShouldHaveSingleItem();
        alert.GetProperty("kind").GetString().ShouldBe("BackupFailed");
        alert.GetProperty("recoveryPointId").GetGuid().ShouldBe(failed);
        alert.GetProperty("message").GetString()!.ShouldContain("agent lost: lease expired 3 times");
        (await AlertEventsAsync(AlertKind.BackupFailed, source.DataSource)).ShouldHaveSingleItem();

        _clock.Advance(TimeSpan.FromHours(1));
        await FinishedBackupAsync(source);
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.BackupFailed, source.DataSource, Raised: false)]);
        (await AlertsAsync($"?status=Resolved&dataSourceId={source.DataSource}")).ShouldHaveSingleItem().GetProperty("kind").GetString().ShouldBe("BackupFailed");
    }

    /// <summary>A synchronisation that ended now (succeeded, or failed with <paramref name="failure"/>); waits for its job view.</summary>
    private async Task<Guid> FinishedSyncAsync((Guid Group, Guid DataSource, Guid Agent) source, string? failure = null)
    {
        var id = Guid.CreateVersion7();
        var now = _clock.GetUtcNow();
        await using (var session = Store.LightweightSession())
        {
            session.Events.StartStream<Synchronisation>(id,
                new SyncRequested(id, source.DataSource, source.Group, source.Agent, "/srv", "scheduler", now),
                new SyncStarted(id, source.Agent, now),
                failure is null
                    ? new ReplicaSynchronised(id, source.DataSource, 1, 0, 0, 10, [], 0, now)
                    : new SyncFailed(id, failure, now));
            await session.SaveChangesAsync(Ct);
        }
        var state = failure is null ? "Succeeded" : "Failed";
        await _client.WaitForAsync($"/api/jobs/{id}", v => v.GetProperty("state").GetString() == state);
        return id;
    }

    [Fact]
    public async Task A_failed_synchronisation_raises_an_alert_that_the_next_good_sync_or_a_later_recovery_point_resolves()
    {
        var source = await DataSourceAsync();
        await FinishedSyncAsync(source, "permission denied: /srv");
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.SyncFailed, source.DataSource, Raised: true)]);
        var alert = (await AlertsAsync($"?status=Active&dataSourceId={source.DataSource}")).ShouldHaveSingleItem();
        alert.GetProperty("kind").GetString().ShouldBe("SyncFailed");
        alert.GetProperty("message").GetString()!.ShouldContain("permission denied: /srv");

        _clock.Advance(TimeSpan.FromMinutes(15));
        await FinishedSyncAsync(source);
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.SyncFailed, source.DataSource, Raised: false)]);

        // Raised again by the next failure; a recovery point created after it (which carries its own sync) resolves it.
        _clock.Advance(TimeSpan.FromMinutes(15));
        await FinishedSyncAsync(source, "agent lost: lease expired 3 times");
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.SyncFailed, source.DataSource, Raised: true)]);
        _clock.Advance(TimeSpan.FromMinutes(15));
        await FinishedBackupAsync(source);
        (await CheckAsync(source.DataSource)).ShouldBe([new AlertChange(AlertKind.SyncFailed, source.DataSource, Raised: false)]);
        (await AlertEventsAsync(AlertKind.SyncFailed, source.DataSource)).Count.ShouldBe(4, "raised, resolved, raised, resolved on one stream");
    }

    [Fact]
    public async Task An_agent_that_stops_polling_is_reported_lost_and_its_next_poll_resolves_it()
    {
        var agent = await _client.EnrolAsync("quiet-machine");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        _clock.Advance(AgentLostAfter - TimeSpan.FromMinutes(1));
        (await CheckAsync(agent.AgentId)).ShouldBeEmpty();
        _clock.Advance(TimeSpan.FromMinutes(2));
        (await CheckAsync(agent.AgentId)).ShouldBe([new AlertChange(AlertKind.AgentLost, agent.AgentId, Raised: true)]);
        var lost = (await AlertsAsync("?status=Active&kind=AgentLost")).Single(a => a.GetProperty("agentId").GetGuid() == agent.AgentId);
        lost.GetProperty("message").GetString()!.ShouldContain("quiet-machine");

        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await CheckAsync(agent.AgentId)).ShouldBe([new AlertChange(AlertKind.AgentLost, agent.AgentId, Raised: false)]);
        var events = await AlertEventsAsync(AlertKind.AgentLost, agent.AgentId);
        events.Count.ShouldBe(2);
        events[1].ShouldBeOfType<AlertResolved>();
    }

    [Fact]
    public async Task A_failed_vault_transfer_raises_an_alert_that_the_completed_copy_resolves()
    {
        var source = await DataSourceAsync();
        var rp = await FinishedBackupAsync(source);
        var transfer = VaultTransfer.IdFor(rp);
        await using (var session = Store.LightweightSession())
        {
            session.Events.StartStream<VaultTransfer>(transfer,
                new VaultTransferStarted(transfer, rp, 0, _clock.GetUtcNow()),
                new VaultTransferFailed(transfer, rp, "vault unreachable", _clock.GetUtcNow()));
            await session.SaveChangesAsync(Ct);
        }
        await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("vaultError").GetString() == "vault unreachable");

        (await CheckAsync(rp)).ShouldBe([new AlertChange(AlertKind.VaultTransferFailed, rp, Raised: true)]);
        var alert = (await AlertsAsync($"?status=Active&dataSourceId={source.DataSource}")).ShouldHaveSingleItem();
        alert.GetProperty("kind").GetString().ShouldBe("VaultTransferFailed");
        alert.GetProperty("message").GetString()!.ShouldContain("vault unreachable");

        // The daemon's retry starts the copy again (the error clears from the view) but only the completed copy resolves the alert.
        await using (var session = Store.LightweightSession())
        {
            session.Events.Append(transfer, new VaultTransferStarted(transfer, rp, 0, _clock.GetUtcNow()));
            await session.SaveChangesAsync(Ct);
        }
        await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("vaultError").ValueKind == JsonValueKind.Null);
        (await CheckAsync(rp)).ShouldBeEmpty();

        await using (var session = Store.LightweightSession())
        {
            session.Events.Append(transfer, new VaultTransferCompleted(transfer, rp, 0, 0, _clock.GetUtcNow()));
            await session.SaveChangesAsync(Ct);
        }
        await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("tier").GetString() == "Both");
        (await CheckAsync(rp)).ShouldBe([new AlertChange(AlertKind.VaultTransferFailed, rp, Raised: false)]);
        (await AlertsAsync($"?status=Active&dataSourceId={source.DataSource}")).ShouldBeEmpty();
    }

    [Fact]
    public async Task Alerts_are_listed_newest_first_and_bad_filters_are_rejected()
    {
        var first = await DataSourceAsync();
        await FinishedBackupAsync(first, "disk full");
        await CheckAsync(first.DataSource);
        _clock.Advance(TimeSpan.FromMinutes(1));
        var second = await DataSourceAsync();
        await FinishedBackupAsync(second, "disk full");
        await CheckAsync(second.DataSource);

        var listed = (await AlertsAsync("?kind=BackupFailed")).Select(a => a.GetProperty("dataSourceId").GetGuid()).ToList();
        listed.IndexOf(second.DataSource).ShouldBeLessThan(listed.IndexOf(first.DataSource));
        listed.IndexOf(first.DataSource).ShouldBeGreaterThanOrEqualTo(0);

        (await _client.Http.GetAsync("/api/alerts?status=Sleeping", Ct)).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await _client.Http.GetAsync("/api/alerts?limit=0", Ct)).StatusCode.ShouldBe(HttpStatusCode.BadRequest);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers) await worker.DisposeAsync();
        await _api.DisposeAsync();
    }
}
