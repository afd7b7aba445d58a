using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.IntegrationTests.Api;

/// <summary>The agent's side of a backup spoken over HTTP against the real API, store and projections.</summary>
public sealed class AgentProtocolTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<(EnrolAgentResponse Agent, Guid RecoveryPoint)> QueuedBackupAsync() => _client.QueuedBackupAsync();

    private Task<HttpResponseMessage> PollAsync(EnrolAgentResponse agent) => _client.PollAsync(agent);

    private async Task<string> UploadPackAsync(EnrolAgentResponse agent, Guid rp, byte[] pack)
    {
        var id = Convert.ToHexStringLower(SHA256.HashData(pack));
        var response = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put,
            $"/api/agents/{agent.AgentId}/recovery-points/{rp}/packs/{id}?chunks=2", agent.Credential, new ByteArrayContent(pack)), Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return id;
    }

    [Fact]
    public async Task Two_polls_racing_for_one_job_hand_it_out_once()
    {
        var (agent, rp) = await QueuedBackupAsync();
        var polls = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => PollAsync(agent)));
        polls.Count(p => p.StatusCode == HttpStatusCode.OK).ShouldBe(1);
        polls.Count(p => p.StatusCode == HttpStatusCode.NoContent).ShouldBe(4);
        var job = await polls.Single(p => p.StatusCode == HttpStatusCode.OK).Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct);
        job!.RecoveryPointId.ShouldBe(rp);
        job.Kind.ShouldBe(AgentJobKind.Backup);
        job.Path.ShouldBe("/srv/files");
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Packs_and_manifest_make_a_recovery_point_on_disk_with_its_totals()
    {
        var (agent, rp) = await QueuedBackupAsync();
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var a = RandomNumberGenerator.GetBytes(3000);
        var b = RandomNumberGenerator.GetBytes(5000);
        var packId = await UploadPackAsync(agent, rp, [.. a, .. b]);
        await UploadPackAsync(agent, rp, [.. a, .. b]); // a retried upload is not a second disk write
        var manifest = new Manifest(Manifest.CurrentVersion, rp, "/srv/files",
        [
            new ManifestEntry("docs", EntryKind.Directory, 0, 493, DateTime.UtcNow.Ticks),
            new ManifestEntry("docs/a", EntryKind.File, a.Length, 420, DateTime.UtcNow.Ticks, Convert.ToHexStringLower(SHA256.HashData(a)), Segments: [new PackSegment(packId, 0, a.Length)]),
            new ManifestEntry("docs/b", EntryKind.File, b.Length, 420, DateTime.UtcNow.Ticks, Convert.ToHexStringLower(SHA256.HashData(b)), Segments: [new PackSegment(packId, a.Length, b.Length)]),
        ]);
        var commit = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post,
            $"/api/agents/{agent.AgentId}/recovery-points/{rp}/complete", agent.Credential, JsonContent.Create(new CompleteBackupRequest(manifest), options: Manifest.Json)), Ct);
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));

        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("status").GetString() == "Created");
        view.GetProperty("tier").GetString().ShouldBe("Disk");
        view.GetProperty("files").GetInt32().ShouldBe(2);
        view.GetProperty("directories").GetInt32().ShouldBe(1);
        view.GetProperty("bytesRead").GetInt64().ShouldBe(8000);
        view.GetProperty("packsWrittenToDisk").GetInt32().ShouldBe(1);
        File.Exists(Path.Combine(api.DiskStore, "packs", packId[..2], packId)).ShouldBeTrue();
        File.Exists(Path.Combine(api.DiskStore, "manifests", $"{rp:N}.json")).ShouldBeTrue();

        var list = await _client.GetJsonAsync($"/api/recovery-points?dataSourceId={view.GetProperty("dataSourceId").GetGuid()}");
        list.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetGuid()).ShouldBe([rp]);
    }

    [Fact]
    public async Task A_manifest_naming_a_pack_the_server_does_not_hold_is_refused()
    {
        var (agent, rp) = await QueuedBackupAsync();
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var ghost = Convert.ToHexStringLower(SHA256.HashData("never uploaded"u8));
        var manifest = new Manifest(Manifest.CurrentVersion, rp, "/srv/files",
            [new ManifestEntry("x", EntryKind.File, 5, 420, 0, ghost, Segments: [new PackSegment(ghost, 0, 5)])]);
        var before = await api.EventCountAsync();
        var commit = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post,
            $"/api/agents/{agent.AgentId}/recovery-points/{rp}/complete", agent.Credential, JsonContent.Create(new CompleteBackupRequest(manifest), options: Manifest.Json)), Ct);
        commit.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await commit.Content.ReadAsStringAsync(Ct)).ShouldContain("not on the server");
        (await api.EventCountAsync()).ShouldBe(before);
        File.Exists(Path.Combine(api.DiskStore, "manifests", $"{rp:N}.json")).ShouldBeFalse();
    }

    [Fact]
    public async Task A_failed_backup_is_recorded_with_its_reason_and_leaves_the_queue()
    {
        var (agent, rp) = await QueuedBackupAsync();
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var fail = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post,
            $"/api/agents/{agent.AgentId}/recovery-points/{rp}/fail", agent.Credential, JsonContent.Create(new FailJobRequest("disk on fire"))), Ct);
        fail.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("status").GetString() == "Failed");
        view.GetProperty("failureReason").GetString().ShouldBe("disk on fire");
        view.GetProperty("tier").GetString().ShouldBe("None");
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Swagger_documents_the_api_and_health_checks_both_stores()
    {
        var doc = await _client.GetJsonAsync("/swagger/v1/swagger.json");
        var paths = doc.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        paths.ShouldContain("/api/protection-groups");
        paths.ShouldContain("/api/recovery-points/{recoveryPointId}/restores");
        paths.ShouldContain("/api/agents/{agentId}/jobs/next");
        var health = await _client.Http.GetAsync("/health", Ct);
        health.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await health.Content.ReadAsStringAsync(Ct)).ShouldBe("Healthy");
    }
}
