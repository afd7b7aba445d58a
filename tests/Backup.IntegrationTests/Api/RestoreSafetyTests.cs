using System.Net;
using System.Net.Http.Json;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// A restore destroys nothing unless asked to: items already at the target are kept by default, overwriting them needs a
/// security PIN, and a system folder is a target only when the request says so.
/// </summary>
public sealed class RestoreSafetyTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A created recovery point of a fresh agent, taken over the agent protocol.</summary>
    private async Task<(EnrolAgentResponse Agent, Guid RecoveryPoint)> CreatedAsync()
    {
        var (agent, rp) = await _client.QueuedBackupAsync($"/srv/{Guid.NewGuid():N}");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var pack = TestPacks.Random(500);
        await _client.UploadPackAsync(agent, rp, pack);
        var commit = await _client.CommitAsync(agent, rp, new CompleteBackupRequest(
            [pack.Chunks[0].ToString()], TestPacks.Base64(pack.Chunks), 1, 0, 500, Items: [new CatalogEntry("a.txt", EntryKind.File, 500, DateTimeOffset.UnixEpoch)]));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        return (agent, rp);
    }

    private Task<HttpResponseMessage> RestoreAsync(Guid rp, object body, string? pin = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/api/recovery-points/{rp}/restores") { Content = JsonContent.Create(body) };
        if (pin is not null) request.Headers.Add("X-Security-Pin", pin);
        return _client.Http.SendAsync(request, Ct);
    }

    private async Task<AgentJob> RestoreJobAsync(EnrolAgentResponse agent)
    {
        var poll = await _client.PollAsync(agent);
        poll.StatusCode.ShouldBe(HttpStatusCode.OK, await poll.Content.ReadAsStringAsync(Ct));
        var job = (await poll.Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!;
        job.Kind.ShouldBe(JobKind.Restore);
        return job;
    }

    [Fact]
    public async Task By_default_a_restore_keeps_what_is_at_the_target_and_restores_beside_it()
    {
        var (agent, rp) = await CreatedAsync();
        var response = await RestoreAsync(rp, new { source = "Disk", targetPath = "/restore/here" });
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        (await RestoreJobAsync(agent)).IfExists.ShouldBe(ExistingItems.KeepBoth);
    }

    [Fact]
    public async Task Overwriting_needs_a_security_pin()
    {
        var (agent, rp) = await CreatedAsync();
        await api.ShouldBeRejectedAsync(() => RestoreAsync(rp, new { source = "Disk", targetPath = "/restore/here", ifExists = "Overwrite" }), HttpStatusCode.Forbidden);
        await api.ShouldBeRejectedAsync(() => RestoreAsync(rp, new { source = "Disk", targetPath = "/restore/here", ifExists = "Overwrite" }, pin: "00000000"), HttpStatusCode.Forbidden);

        var response = await RestoreAsync(rp, new { source = "Disk", targetPath = "/restore/here", ifExists = "Overwrite" }, await _client.PinAsync());
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        (await RestoreJobAsync(agent)).IfExists.ShouldBe(ExistingItems.Overwrite);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/etc")]
    [InlineData("/etc/nginx")]
    [InlineData("/usr/local/bin")]
    [InlineData("/home")]
    [InlineData("//etc/./")]
    [InlineData("/restore/../etc")]
    [InlineData("C:\\")]
    [InlineData("c:/windows/System32")]
    public async Task A_system_folder_as_the_target_is_a_400_naming_it(string target)
    {
        var (_, rp) = await CreatedAsync();
        var problem = await api.ShouldBeRejectedAsync(() => RestoreAsync(rp, new { source = "Disk", targetPath = target, ifExists = "Skip" }), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "targetPath");
    }

    [Fact]
    public async Task A_system_folder_is_a_target_when_the_request_says_so()
    {
        var (agent, rp) = await CreatedAsync();
        var response = await RestoreAsync(rp, new { source = "Disk", targetPath = "/etc/nginx/", ifExists = "Skip", intoSystemFolder = true });
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        (await RestoreJobAsync(agent)).Path.ShouldBe("/etc/nginx");
    }
}
