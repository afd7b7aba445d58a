using System.Net;
using System.Net.Http.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// What a restore's agent reads when the server's disk lost a pack file: a restore from disk takes the vault's copy of that
/// pack (the point was copied there), and where no tier holds it the answer is a problem naming the pack, never a 500.
/// </summary>
public sealed class RestoreReadTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string PackPath(string id) => Path.Combine(api.DiskStore, "packs", id[..2], id);

    /// <summary>A restore from disk of the backup's point, claimed by its agent.</summary>
    private async Task<Guid> RunningDiskRestoreAsync(AgentBackup backup)
    {
        var restore = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}/restores", new { source = "Disk", targetPath = "/alt" }, Ct);
        restore.StatusCode.ShouldBe(HttpStatusCode.Accepted, await restore.Content.ReadAsStringAsync(Ct));
        var restoreId = await ApiClient.IdAsync(restore);
        (await _client.PollAsync(backup.Agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        return restoreId;
    }

    private Task<HttpResponseMessage> ReadPackAsync(AgentBackup backup, Guid restoreId, string packId) =>
        _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Get, $"/api/agents/{backup.Agent.AgentId}/restores/{restoreId}/packs/{packId}", backup.Agent.Credential), Ct);

    [Fact]
    public async Task A_pack_gone_from_the_disk_is_read_from_the_vault_copy()
    {
        var backup = await _client.CreatedBackupAsync();
        await api.CopyToVaultAsync(backup.RecoveryPointId);
        var lost = backup.Packs[1];
        File.Delete(PackPath(lost.Id));
        var restoreId = await RunningDiskRestoreAsync(backup);

        var response = await ReadPackAsync(backup, restoreId, lost.Id);

        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        (await response.Content.ReadAsByteArrayAsync(Ct)).ShouldBe(lost.Bytes);
        var kept = await ReadPackAsync(backup, restoreId, backup.Packs[0].Id);
        (await kept.Content.ReadAsByteArrayAsync(Ct)).ShouldBe(backup.Packs[0].Bytes, "the packs still on disk are read from there");
    }

    [Fact]
    public async Task A_pack_no_tier_holds_is_a_problem_naming_it()
    {
        var backup = await _client.CreatedBackupAsync();
        var lost = backup.Packs[0];
        File.Delete(PackPath(lost.Id));
        var restoreId = await RunningDiskRestoreAsync(backup);

        var response = await ReadPackAsync(backup, restoreId, lost.Id);

        response.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        var problem = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(Ct);
        problem.GetProperty("detail").GetString()!.ShouldContain(lost.Id);
        problem.GetProperty("code").GetString().ShouldBe("restore-data-missing");
    }

    [Fact]
    public async Task A_tier_the_api_does_not_know_is_a_problem_naming_the_tier()
    {
        var backup = await _client.CreatedBackupAsync();
        var restoreId = await RunningDiskRestoreAsync(backup);

        var response = await ReadPackAsync(backup, restoreId, backup.Packs[0].Id + "?tier=Tape");

        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        (await response.Content.ReadAsStringAsync(Ct)).ShouldContain("tier");
    }
}
