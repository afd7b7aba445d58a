using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// An agent completes a restore listing the items the target would not take (issue 17): the restore is completed with errors
/// and shows them; a list the server cannot record is refused, naming the field, with nothing appended.
/// </summary>
public sealed class RestoreCompletionTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_restore_completed_with_items_it_could_not_write_shows_them_and_is_completed_with_errors()
    {
        var (backup, restoreId) = await RunningRestoreAsync();

        var done = await CompleteAsync(backup, restoreId, new
        {
            files = 2, bytes = 300,
            failed = new[] { new { path = "docs/locked.txt", reason = "Access to the path is denied." }, new { path = "a/b", reason = "Is a directory" } },
        });
        done.StatusCode.ShouldBe(HttpStatusCode.NoContent, await done.Content.ReadAsStringAsync(Ct));

        var restore = await _client.WaitForAsync($"/api/restores/{restoreId}", r => r.GetProperty("status").GetString() is "Completed" or "CompletedWithErrors" or "Failed");
        restore.GetProperty("status").GetString().ShouldBe("CompletedWithErrors");
        restore.GetProperty("files").GetInt32().ShouldBe(2);
        restore.GetProperty("failedItemCount").GetInt32().ShouldBe(2);
        restore.GetProperty("failedItems").EnumerateArray().Select(f => (f.GetProperty("path").GetString(), f.GetProperty("reason").GetString()))
            .ShouldBe([("docs/locked.txt", "Access to the path is denied."), ("a/b", "Is a directory")]);
        var trail = (await _client.GetJsonAsync($"/api/audit/events?streamId={restoreId}")).GetProperty("items").EnumerateArray()
            .Select(e => e.GetProperty("eventType").GetString()).ToList();
        trail.TakeLast(2).ShouldBe(["restore_items_failed.v1", "restore_completed.v1"]);
    }

    [Fact]
    public async Task A_restore_completed_without_failed_items_is_completed()
    {
        var (backup, restoreId) = await RunningRestoreAsync();

        (await CompleteAsync(backup, restoreId, new { files = 3, bytes = 12345 })).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        var restore = await _client.WaitForAsync($"/api/restores/{restoreId}", r => r.GetProperty("status").GetString() is "Completed" or "CompletedWithErrors" or "Failed");
        restore.GetProperty("status").GetString().ShouldBe("Completed");
        restore.GetProperty("failedItemCount").GetInt32().ShouldBe(0);
    }

    [Theory]
    [InlineData("", "Permission denied", "failed[0].Path")]
    [InlineData("docs/a.txt", "", "failed[0].Reason")]
    public async Task A_failed_item_without_a_path_or_a_reason_is_refused_naming_it(string path, string reason, string field)
    {
        var (backup, restoreId) = await RunningRestoreAsync();

        var problem = await api.ShouldBeRejectedAsync(
            () => CompleteAsync(backup, restoreId, new { files = 1, bytes = 1, failed = new[] { new { path, reason } } }), HttpStatusCode.BadRequest);

        Rejections.ShouldName(problem, field);
    }

    private async Task<(AgentBackup Backup, Guid RestoreId)> RunningRestoreAsync()
    {
        var backup = await _client.CreatedBackupAsync();
        var requested = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}/restores", new { source = "Disk", targetPath = "/alt" }, Ct);
        requested.StatusCode.ShouldBe(HttpStatusCode.Accepted, await requested.Content.ReadAsStringAsync(Ct));
        var restoreId = await ApiClient.IdAsync(requested);
        var claimed = await _client.PollAsync(backup.Agent);
        claimed.StatusCode.ShouldBe(HttpStatusCode.OK, await claimed.Content.ReadAsStringAsync(Ct));
        (await claimed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("jobId").GetGuid().ShouldBe(restoreId);
        return (backup, restoreId);
    }

    private Task<HttpResponseMessage> CompleteAsync(AgentBackup backup, Guid restoreId, object body) =>
        _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{backup.Agent.AgentId}/restores/{restoreId}/complete",
            backup.Agent.Credential, JsonContent.Create(body)), Ct);
}
