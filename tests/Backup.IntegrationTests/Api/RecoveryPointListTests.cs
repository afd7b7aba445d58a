using System.Net;
using System.Text.Json;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>The recovery-point list: filters, newest first, and a cursor that pages without gaps or repeats.</summary>
public sealed class RecoveryPointListTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Pages_walk_every_recovery_point_of_a_data_source_once_newest_first()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/a");
        var other = await _client.AddFolderAsync(group, agent.AgentId, "/srv/b");
        var requested = new List<Guid>();
        for (var i = 0; i < 5; i++) requested.Add(await _client.RequestBackupAsync(source));
        await _client.RequestBackupAsync(other);

        await _client.WaitForAsync($"/api/recovery-points?groupId={group}&limit=500", p => p.GetProperty("items").GetArrayLength() == 6);

        var seen = new List<Guid>();
        string? after = null;
        var pages = 0;
        do
        {
            var url = $"/api/recovery-points?dataSourceId={source}&limit=2" + (after is null ? "" : $"&after={after}");
            var page = await _client.GetJsonAsync(url);
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetGuid()));
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Null ? null : page.GetProperty("nextAfter").GetString();
            pages++;
        }
        while (after is not null);

        pages.ShouldBe(3);
        seen.ShouldBe(Enumerable.Reverse(requested).ToList());
    }

    [Fact]
    public async Task Tier_and_time_filters_narrow_the_list()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/c");
        var rp = await _client.RequestBackupAsync(source);
        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", _ => true);
        var requestedAt = view.GetProperty("requestedAt").GetDateTimeOffset();

        string Url(string extra) => $"/api/recovery-points?agentId={agent.AgentId}{extra}";
        (await _client.GetJsonAsync(Url("&tier=None"))).GetProperty("items").GetArrayLength().ShouldBe(1); // not taken yet: no copy anywhere
        (await _client.GetJsonAsync(Url("&tier=Disk"))).GetProperty("items").GetArrayLength().ShouldBe(0);
        var from = Uri.EscapeDataString(requestedAt.AddMinutes(1).ToString("O"));
        (await _client.GetJsonAsync(Url($"&from={from}"))).GetProperty("items").GetArrayLength().ShouldBe(0);
        var to = Uri.EscapeDataString(requestedAt.AddMinutes(1).ToString("O"));
        (await _client.GetJsonAsync(Url($"&to={to}"))).GetProperty("items").GetArrayLength().ShouldBe(1);
    }

    [Fact]
    public async Task A_restore_jobs_lost_lease_shows_on_the_restore_and_never_as_a_recovery_point()
    {
        var restoreId = Guid.CreateVersion7();
        var agentId = Guid.CreateVersion7();
        var now = DateTimeOffset.UtcNow;
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.StartStream<Restore>(restoreId,
                new RestoreRequested(restoreId, Guid.CreateVersion7(), Guid.CreateVersion7(), agentId, StorageTier.Disk, "/r", "operator", now),
                new RestoreStarted(restoreId, agentId, now),
                new JobLeaseExpired(restoreId, agentId, 1, "no heartbeat", now),
                new JobRequeued(restoreId, agentId, 1, now.AddSeconds(30), now));
            await session.SaveChangesAsync(Ct);
        }

        var restore = await _client.WaitForAsync($"/api/restores/{restoreId}", r => r.GetProperty("leaseExpiries").GetInt32() == 1);
        restore.GetProperty("status").GetString().ShouldBe("Requested");
        (await _client.Http.GetAsync($"/api/recovery-points/{restoreId}", Ct)).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to")]
    [InlineData("after=not-a-cursor", "after")]
    [InlineData("limit=501", "limit")]
    [InlineData("tier=Tape", "tier")]
    public async Task Bad_filters_are_a_400_naming_the_parameter(string query, string parameter)
    {
        var response = await _client.Http.GetAsync($"/api/recovery-points?{query}", Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, body);
        JsonDocument.Parse(body).RootElement.GetProperty("errors").EnumerateObject().Select(p => p.Name).ShouldContain(parameter, body);
    }

    [Fact]
    public async Task As_of_a_past_instant_the_list_shows_the_points_that_existed_then_on_the_tiers_that_held_them_then()
    {
        var backup = await _client.CreatedBackupAsync();
        var created = (await _client.WaitForAsync($"/api/recovery-points/{backup.RecoveryPointId}", r => r.GetProperty("status").GetString() == "Created"))
            .GetProperty("createdAt").GetDateTimeOffset();
        await Task.Delay(50, Ct);
        await api.CopyToVaultAsync(backup.RecoveryPointId);
        var copied = (await _client.WaitForAsync($"/api/recovery-points/{backup.RecoveryPointId}", r => r.GetProperty("tier").GetString() == "Both"))
            .GetProperty("copiedToVaultAt").GetDateTimeOffset();
        await Task.Delay(50, Ct);
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.Append(backup.RecoveryPointId, new RecoveryPointExpired(backup.RecoveryPointId, StorageTier.Disk, "retention", DateTimeOffset.UtcNow));
            await session.SaveChangesAsync(Ct);
        }
        await _client.WaitForAsync($"/api/recovery-points/{backup.RecoveryPointId}", r => r.GetProperty("tier").GetString() == "Vault");

        async Task<List<JsonElement>> AsOfAsync(DateTimeOffset at, string extra = "") =>
            (await _client.GetJsonAsync($"/api/recovery-points?dataSourceId={backup.DataSourceId}&asOf={Uri.EscapeDataString(at.ToString("O"))}{extra}"))
                .GetProperty("items").EnumerateArray().ToList();

        (await AsOfAsync(created.AddTicks(-10))).ShouldBeEmpty(); // not created yet
        var beforeCopy = (await AsOfAsync(created + (copied - created) / 2)).ShouldHaveSingleItem();
        beforeCopy.GetProperty("tier").GetString().ShouldBe("Disk");
        beforeCopy.GetProperty("copiedToVaultAt").ValueKind.ShouldBe(JsonValueKind.Null);
        beforeCopy.GetProperty("expiredFromDiskAt").ValueKind.ShouldBe(JsonValueKind.Null);
        (await AsOfAsync(copied.AddMilliseconds(1))).ShouldHaveSingleItem().GetProperty("tier").GetString().ShouldBe("Both");
        (await AsOfAsync(copied.AddMilliseconds(1), "&tier=Vault")).ShouldBeEmpty();
        (await AsOfAsync(DateTimeOffset.UtcNow)).ShouldHaveSingleItem().GetProperty("tier").GetString().ShouldBe("Vault");
        (await AsOfAsync(DateTimeOffset.UtcNow, "&tier=Disk")).ShouldBeEmpty();

        var future = await api.ShouldBeRejectedAsync(
            () => _client.Http.GetAsync($"/api/recovery-points?asOf={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddDays(1).ToString("O"))}", Ct), System.Net.HttpStatusCode.BadRequest);
        Rejections.ShouldName(future, "asOf");
    }
}
