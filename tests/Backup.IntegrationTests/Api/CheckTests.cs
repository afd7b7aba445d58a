using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// The keyless consistency check of a recovery point's disk copy: a sound copy is verified; a flipped byte, a
/// truncated pack and a missing pack are each reported by pack, and the view says the copy is damaged.
/// </summary>
public sealed class CheckTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A created recovery point of two data packs and a tree pack, committed through the agent protocol.</summary>
    private async Task<(Guid RecoveryPoint, TestPack A, TestPack B, TestPack Tree)> CreatedAsync()
    {
        var (agent, rp) = await _client.QueuedBackupAsync($"/srv/{Guid.NewGuid():N}");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var a = TestPacks.Build(RandomNumberGenerator.GetBytes(3000), RandomNumberGenerator.GetBytes(4000));
        var b = TestPacks.Build(RandomNumberGenerator.GetBytes(5000));
        var tree = TestPacks.Build(RandomNumberGenerator.GetBytes(200));
        foreach (var pack in new[] { a, b, tree })
        {
            var put = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put,
                $"/api/agents/{agent.AgentId}/recovery-points/{rp}/packs/{pack.Id}", agent.Credential, new ByteArrayContent(pack.Bytes)), Ct);
            put.StatusCode.ShouldBe(HttpStatusCode.OK);
        }
        var commit = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/complete", agent.Credential,
            JsonContent.Create(new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64([.. a.Chunks, .. b.Chunks]), 3, 0, 12000), options: Manifest.Json)), Ct);
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        return (rp, a, b, tree);
    }

    private string PackPath(string id) => Path.Combine(api.DiskStore, "packs", id[..2], id);

    private async Task<System.Text.Json.JsonElement> CheckAsync(Guid rp)
    {
        var response = await _client.Http.PostAsync($"/api/recovery-points/{rp}/check", null, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(Ct);
    }

    [Fact]
    public async Task A_sound_copy_is_verified()
    {
        var (rp, a, b, tree) = await CreatedAsync();
        var outcome = await CheckAsync(rp);
        outcome.GetProperty("packsChecked").GetInt32().ShouldBe(3);
        outcome.GetProperty("bytesChecked").GetInt64().ShouldBe(a.Bytes.Length + b.Bytes.Length + tree.Bytes.Length);
        outcome.GetProperty("damaged").GetArrayLength().ShouldBe(0);
        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("verifiedOnDisk").ValueKind != System.Text.Json.JsonValueKind.Null);
        view.GetProperty("verifiedOnDisk").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task Flipped_truncated_and_missing_packs_are_each_named()
    {
        var (rp, a, b, tree) = await CreatedAsync();
        var flipped = File.ReadAllBytes(PackPath(a.Id));
        flipped[100] ^= 0x01;
        File.WriteAllBytes(PackPath(a.Id), flipped);
        File.WriteAllBytes(PackPath(b.Id), b.Bytes[..^5]);
        File.Delete(PackPath(tree.Id));

        var damaged = (await CheckAsync(rp)).GetProperty("damaged").EnumerateArray()
            .ToDictionary(d => d.GetProperty("packId").GetString()!, d => d.GetProperty("problem").GetString()!);
        damaged.Keys.ShouldBe([a.Id, b.Id, tree.Id], ignoreOrder: true);
        damaged[a.Id].ShouldContain("hashes to");
        damaged[b.Id].ShouldContain("hashes to");
        damaged[tree.Id].ShouldBe("missing");
        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("verifiedOnDisk").ValueKind != System.Text.Json.JsonValueKind.Null);
        view.GetProperty("verifiedOnDisk").GetBoolean().ShouldBeFalse();
        view.GetProperty("damagedOnDisk").GetArrayLength().ShouldBe(3);
    }

    [Fact]
    public async Task Checking_what_has_no_copy_is_refused()
    {
        var (_, rp) = await _client.QueuedBackupAsync($"/srv/{Guid.NewGuid():N}");
        await api.ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/recovery-points/{rp}/check", null, Ct), HttpStatusCode.Conflict);
        var (created, _, _, _) = await CreatedAsync();
        await api.ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/recovery-points/{created}/check?tier=Vault", null, Ct), HttpStatusCode.Conflict);
        await api.ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/recovery-points/{Guid.NewGuid()}/check", null, Ct), HttpStatusCode.NotFound);
    }
}
