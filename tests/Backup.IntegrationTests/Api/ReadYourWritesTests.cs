using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// What a client reads right after a job: once the agent's commit (or completion) has answered, the recovery point, the
/// restore and the job are read as done at the first attempt, though their views are projected by the async daemon.
/// </summary>
public sealed class ReadYourWritesTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_recovery_point_is_listed_as_created_by_the_first_read_after_its_commit_answered()
    {
        var backup = await _client.CreatedBackupAsync();

        (await _client.GetJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}")).GetProperty("status").GetString().ShouldBe("Created");
        var listed = (await _client.GetJsonAsync($"/api/recovery-points?dataSourceId={backup.DataSourceId}")).GetProperty("items").EnumerateArray().Single();
        (listed.GetProperty("id").GetGuid(), listed.GetProperty("status").GetString()).ShouldBe((backup.RecoveryPointId, "Created"));
        (await _client.GetJsonAsync($"/api/jobs/{backup.RecoveryPointId}")).GetProperty("state").GetString().ShouldBe("Succeeded");
    }

    [Fact]
    public async Task A_restore_is_shown_completed_by_the_first_read_after_its_completion_answered()
    {
        var backup = await _client.CreatedBackupAsync();
        var requested = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}/restores", new { source = "Disk", targetPath = "/alt" }, Ct);
        requested.StatusCode.ShouldBe(HttpStatusCode.Accepted, await requested.Content.ReadAsStringAsync(Ct));
        var restoreId = await ApiClient.IdAsync(requested);
        var claimed = await _client.PollAsync(backup.Agent);
        (await claimed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("jobId").GetGuid().ShouldBe(restoreId);

        var completed = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{backup.Agent.AgentId}/restores/{restoreId}/complete",
            backup.Agent.Credential, JsonContent.Create(new { files = 3, bytes = 12000 })), Ct);
        completed.StatusCode.ShouldBe(HttpStatusCode.NoContent, await completed.Content.ReadAsStringAsync(Ct));

        (await _client.GetJsonAsync($"/api/restores/{restoreId}")).GetProperty("status").GetString().ShouldBe("Completed");
        (await _client.GetJsonAsync($"/api/jobs/{restoreId}")).GetProperty("state").GetString().ShouldBe("Succeeded");
    }
}
