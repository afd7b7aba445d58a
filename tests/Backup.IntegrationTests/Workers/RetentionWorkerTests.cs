extern alias workers;
using System.Net;
using System.Net.Http.Json;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using workers::Backup.Workers.Retention;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// Retention on real PostgreSQL: two workers applying the same policies at the same instant record each expiry once, on
/// disk by the short-term range and in the vault by GFS, and the recovery-point view shows where copies are still kept.
/// </summary>
public sealed class RetentionWorkerTests(ApiFactory api) : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 3, 20, 12, 0, 0, TimeSpan.Zero);
    private readonly ApiClient _client = new(api.CreateClient());
    private readonly List<ServiceProvider> _workers = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private RetentionWorker Worker()
    {
        var services = new ServiceCollection().AddSingleton(TimeProvider.System).AddLogging();
        services.AddOptions<RetentionOptions>();
        services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, api.Schema)).UseLightweightSessions();
        services.AddSingleton<RetentionWorker>();
        var provider = services.BuildServiceProvider();
        _workers.Add(provider);
        return provider.GetRequiredService<RetentionWorker>();
    }

    private async Task<(Guid Group, Guid Source)> GroupAsync()
    {
        var setup = Now.AddDays(-30);
        var groupId = Guid.CreateVersion7();
        await using var session = api.Store.LightweightSession();
        var created = ProtectionGroup.Create(groupId, $"group {groupId}", setup);
        session.Events.StartStream<ProtectionGroup>(groupId, created);
        var group = ProtectionGroup.Next(null, created);
        var (toGroup, toSource) = ProtectionGroup.AddDataSource(group, groupId, Guid.CreateVersion7(), Guid.CreateVersion7(), DataSourceKind.Folder, $"/srv/{groupId:N}", setup);
        session.Events.Append(groupId, toGroup);
        session.Events.StartStream<DataSource>(toSource.DataSourceId, toSource);
        group = ProtectionGroup.Next(group, toGroup);
        var shortTerm = ProtectionGroup.SetShortTermPolicy(group, groupId,
            new ShortTermPolicy(2, SynchronisationMode.JustBeforeRecoveryPoint, null, [new TimeOnly(20, 0)], Enum.GetValues<DayOfWeek>(), "UTC"), setup);
        session.Events.Append(groupId, shortTerm);
        group = ProtectionGroup.Next(group, shortTerm);
        session.Events.Append(groupId, ProtectionGroup.SetOnlinePolicy(group, groupId,
            new OnlinePolicy([new TimeOnly(22, 0)], OnlineSchedule.Daily, [], new GfsRetention(7, null, null, null)), setup));
        await session.SaveChangesAsync(Ct);
        return (groupId, toSource.DataSourceId);
    }

    private async Task<Guid> CreatedAsync((Guid Group, Guid Source) g, DateTimeOffset at, bool inVault)
    {
        var id = Guid.CreateVersion7();
        var agent = Guid.CreateVersion7();
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.StartStream<RecoveryPoint>(id,
                new BackupRequested(id, g.Source, g.Group, agent, "/srv", "scheduler", at),
                new BackupStarted(id, agent, at),
                new RecoveryPointCreated(id, g.Source, 1, 0, 0, 10, 10, ["p"], new string('0', 64), at));
            if (inVault)
            {
                var transfer = VaultTransfer.IdFor(id);
                session.Events.StartStream<VaultTransfer>(transfer,
                    new VaultTransferStarted(transfer, id, 1, at), new PackUploadedToVault(transfer, id, "p", 10, at), new VaultTransferCompleted(transfer, id, 1, 10, at));
            }
            await session.SaveChangesAsync(Ct);
        }
        var tier = inVault ? "Both" : "Disk";
        await _client.WaitForAsync($"/api/recovery-points/{id}", v => v.GetProperty("tier").GetString() == tier);
        return id;
    }

    [Fact]
    public async Task Two_workers_expire_each_copy_once_by_the_short_term_range_on_disk_and_gfs_in_the_vault()
    {
        var group = await GroupAsync();
        var tenDays = await CreatedAsync(group, Now.AddDays(-10), inVault: true);
        var threeDays = await CreatedAsync(group, Now.AddDays(-3), inVault: true);
        var oneDay = await CreatedAsync(group, Now.AddDays(-1), inVault: false);

        var runs = await Task.WhenAll(Worker().ExpireAsync(Now, Ct), Worker().ExpireAsync(Now, Ct));
        var expired = runs.SelectMany(r => r).Where(e => e.RecoveryPointId == tenDays || e.RecoveryPointId == threeDays || e.RecoveryPointId == oneDay).ToList();

        expired.ShouldBe([new Expiry(tenDays, StorageTier.Disk), new Expiry(threeDays, StorageTier.Disk), new Expiry(tenDays, StorageTier.Vault)], ignoreOrder: true);
        await using (var session = api.Store.QuerySession())
        {
            var events = (await session.Events.FetchStreamAsync(tenDays, token: Ct)).Select(e => e.Data).OfType<RecoveryPointExpired>().ToList();
            events.Select(e => e.Tier).ShouldBe([StorageTier.Disk, StorageTier.Vault], ignoreOrder: true);
            events.Single(e => e.Tier == StorageTier.Disk).Reason.ShouldContain("2 days");
        }

        (await _client.WaitForAsync($"/api/recovery-points/{tenDays}", v => v.GetProperty("tier").GetString() == "None")).GetProperty("status").GetString().ShouldBe("Created");
        await _client.WaitForAsync($"/api/recovery-points/{threeDays}", v => v.GetProperty("tier").GetString() == "Vault");
        (await _client.GetJsonAsync($"/api/recovery-points/{oneDay}")).GetProperty("tier").GetString().ShouldBe("Disk");

        // A copy the policy no longer keeps is not offered for restore; the one still kept is.
        var fromDisk = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{threeDays}/restores", new { source = "Disk", targetPath = "/alt" }, Ct);
        fromDisk.StatusCode.ShouldBe(HttpStatusCode.Conflict, await fromDisk.Content.ReadAsStringAsync(Ct));
        (await fromDisk.Content.ReadAsStringAsync(Ct)).ShouldContain("expired on disk");
        var fromVault = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{threeDays}/restores", new { source = "Vault", targetPath = "/alt" }, Ct);
        fromVault.StatusCode.ShouldBe(HttpStatusCode.Accepted, await fromVault.Content.ReadAsStringAsync(Ct));
        var expiredInVault = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{tenDays}/restores", new { source = "Vault", targetPath = "/alt" }, Ct);
        expiredInVault.StatusCode.ShouldBe(HttpStatusCode.Conflict);

        // Once the view has caught up, nothing is left to expire at the same instant.
        (await Worker().ExpireAsync(Now, Ct)).Where(e => e.RecoveryPointId == tenDays || e.RecoveryPointId == threeDays || e.RecoveryPointId == oneDay).ShouldBeEmpty();
    }

    [Fact]
    public async Task Recovery_points_of_a_data_source_removed_with_retain_stay_until_retention_expires_them()
    {
        var group = await GroupAsync();
        var old = await CreatedAsync(group, Now.AddDays(-10), inVault: false);
        var recent = await CreatedAsync(group, Now.AddDays(-1), inVault: false);
        var removal = await _client.Http.DeleteAsync($"/api/data-sources/{group.Source}?data=retain", Ct);
        removal.StatusCode.ShouldBe(HttpStatusCode.OK, await removal.Content.ReadAsStringAsync(Ct));

        var expired = (await Worker().ExpireAsync(Now, Ct)).Where(e => e.RecoveryPointId == old || e.RecoveryPointId == recent).ToList();

        expired.ShouldBe([new Expiry(old, StorageTier.Disk)], "the group's short-term range still applies to the points it kept");
        await _client.WaitForAsync($"/api/recovery-points/{old}", v => v.GetProperty("tier").GetString() == "None");
        (await _client.GetJsonAsync($"/api/recovery-points/{recent}")).GetProperty("tier").GetString().ShouldBe("Disk");
    }

    [Fact]
    public async Task Deleted_recovery_points_are_not_expired_again()
    {
        var group = await GroupAsync();
        var old = await CreatedAsync(group, Now.AddDays(-10), inVault: true);
        var client = new ApiClient(api.CreateClient());
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/data-sources/{group.Source}?data=delete");
        request.Headers.Add("X-Security-Pin", await client.PinAsync());
        var removal = await client.Http.SendAsync(request, Ct);
        removal.StatusCode.ShouldBe(HttpStatusCode.OK, await removal.Content.ReadAsStringAsync(Ct));
        await _client.WaitForAsync($"/api/recovery-points/{old}", v => v.GetProperty("deleted").GetBoolean());

        (await Worker().ExpireAsync(Now, Ct)).Where(e => e.RecoveryPointId == old).ShouldBeEmpty();
        await using var session = api.Store.QuerySession();
        (await session.Events.FetchStreamAsync(old, token: Ct)).Select(e => e.Data).OfType<RecoveryPointExpired>().ShouldBeEmpty();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers) await worker.DisposeAsync();
    }
}
