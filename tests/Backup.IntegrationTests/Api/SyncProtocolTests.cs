using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Backup.Commands.Synchronising;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;

namespace Backup.IntegrationTests.Api;

/// <summary>The agent's side of a synchronisation over HTTP against the real API and store, and what it refuses.</summary>
public sealed class SyncProtocolTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(EnrolAgentResponse Agent, Guid Source)> SourceAsync()
    {
        var agent = await _client.EnrolAsync();
        return (agent, await _client.AddFolderAsync(await _client.CreateGroupAsync($"sync-{Guid.NewGuid():N}"), agent.AgentId, "/srv/synced"));
    }

    /// <summary>A synchronisation requested and claimed by its agent.</summary>
    private async Task<(EnrolAgentResponse Agent, Guid Sync)> RunningSyncAsync()
    {
        var (agent, source) = await SourceAsync();
        var sync = await _client.RequestSyncAsync(source);
        var claim = await _client.PollAsync(agent);
        claim.StatusCode.ShouldBe(HttpStatusCode.OK);
        var job = (await claim.Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!;
        job.Kind.ShouldBe(JobKind.Synchronisation);
        job.JobId.ShouldBe(sync);
        job.RecoveryPointId.ShouldBe(Guid.Empty);
        job.Path.ShouldBe("/srv/synced");
        return (agent, sync);
    }

    private Task<HttpResponseMessage> EndAsync(EnrolAgentResponse agent, Guid sync, TestPack tree, IEnumerable<Backup.Storage.Crypto.ChunkId> chunks) =>
        _client.CommitAsync(agent, sync, new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64(chunks), 2, 1, 5000), "syncs");

    private async Task<List<object>> EventsAsync(Guid stream)
    {
        await using var session = api.Store.QuerySession();
        return [.. (await session.Events.FetchStreamAsync(stream, token: Ct)).Select(e => e.Data)];
    }

    [Fact]
    public async Task Packs_and_the_end_record_what_the_server_now_holds_without_a_recovery_point()
    {
        var (agent, sync) = await RunningSyncAsync();
        var data = TestPacks.Build(RandomNumberGenerator.GetBytes(3000), RandomNumberGenerator.GetBytes(5000));
        var tree = TestPacks.Random(100);
        (await _client.UploadPackAsync(agent, sync, data, "syncs")).AlreadyPresent.ShouldBeFalse();
        (await _client.UploadPackAsync(agent, sync, data, "syncs")).AlreadyPresent.ShouldBeTrue(); // a retry is not a second disk write
        await _client.UploadPackAsync(agent, sync, tree, "syncs");
        (await _client.KnownChunksAsync(agent)).ShouldContain(data.Chunks[1]);

        var end = await EndAsync(agent, sync, tree, data.Chunks);
        end.StatusCode.ShouldBe(HttpStatusCode.NoContent, await end.Content.ReadAsStringAsync(Ct));

        var events = await EventsAsync(sync);
        events.OfType<SyncPackWrittenToDisk>().Select(p => p.PackId).ShouldBe([data.Id, tree.Id]);
        var done = events.OfType<ReplicaSynchronised>().ShouldHaveSingleItem();
        done.PackIds.ShouldBe(new[] { data.Id, tree.Id }.Order(StringComparer.Ordinal));
        done.Files.ShouldBe(2);
        done.BytesRead.ShouldBe(5000);
        done.BytesOnDisk.ShouldBe(data.Bytes.Length + tree.Bytes.Length);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent, "the job left the queue");
        (await api.ShouldBeRejectedAsync(() => EndAsync(agent, sync, tree, data.Chunks), HttpStatusCode.Conflict))
            .GetProperty("detail").GetString()!.ShouldContain("Synchronised");
    }

    [Fact]
    public async Task An_end_referencing_a_chunk_the_server_does_not_hold_is_refused_and_the_sync_can_still_end()
    {
        var (agent, sync) = await RunningSyncAsync();
        var tree = TestPacks.Random(100);
        await _client.UploadPackAsync(agent, sync, tree, "syncs");
        var ghost = TestPacks.Random(10).Chunks; // built, never uploaded

        var problem = await api.ShouldBeRejectedAsync(() => EndAsync(agent, sync, tree, ghost), HttpStatusCode.UnprocessableEntity);
        problem.GetProperty("detail").GetString()!.ShouldContain("not stored on the server");

        var end = await EndAsync(agent, sync, tree, tree.Chunks);
        end.StatusCode.ShouldBe(HttpStatusCode.NoContent, await end.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task Another_agent_cannot_write_to_end_or_fail_it_and_the_backup_routes_do_not_know_it()
    {
        var (agent, sync) = await RunningSyncAsync();
        var other = await _client.EnrolAsync("machine-2");
        var pack = TestPacks.Random(100);

        // Each agent speaks only for itself: its credential on another agent's route is refused before anything is read.
        await api.ShouldBeRejectedAsync(() => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put,
            $"/api/agents/{agent.AgentId}/syncs/{sync}/packs/{pack.Id}", other.Credential, new ByteArrayContent(pack.Bytes)), Ct), HttpStatusCode.Forbidden);
        await api.ShouldBeRejectedAsync(() => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put,
            $"/api/agents/{other.AgentId}/syncs/{sync}/packs/{pack.Id}", other.Credential, new ByteArrayContent(pack.Bytes)), Ct), HttpStatusCode.Forbidden);
        await api.ShouldBeRejectedAsync(() => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post,
            $"/api/agents/{other.AgentId}/syncs/{sync}/fail", other.Credential, JsonContent.Create(new FailJobRequest("not mine"))), Ct), HttpStatusCode.Forbidden);
        await api.ShouldBeRejectedAsync(() => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put,
            $"/api/agents/{agent.AgentId}/recovery-points/{sync}/packs/{pack.Id}", agent.Credential, new ByteArrayContent(pack.Bytes)), Ct), HttpStatusCode.NotFound);
        await api.ShouldBeRejectedAsync(() => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post,
            $"/api/agents/{agent.AgentId}/syncs/{sync}/fail", agent.Credential, JsonContent.Create(new FailJobRequest(""))), Ct), HttpStatusCode.BadRequest);
        File.Exists(Path.Combine(api.DiskStore, "packs", pack.Id[..2], pack.Id)).ShouldBeFalse("a refused upload leaves nothing on disk");

        var fail = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post,
            $"/api/agents/{agent.AgentId}/syncs/{sync}/fail", agent.Credential, JsonContent.Create(new FailJobRequest("disk on fire"))), Ct);
        fail.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await EventsAsync(sync)).OfType<SyncFailed>().ShouldHaveSingleItem().Reason.ShouldBe("disk on fire");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Synchronise_now_is_refused_for_an_unknown_or_removed_data_source_and_a_waiting_sync_of_a_removed_one_never_runs()
    {
        await api.ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/data-sources/{Guid.NewGuid()}/synchronisations", null, Ct), HttpStatusCode.NotFound);

        var (agent, source) = await SourceAsync();
        var waiting = await _client.RequestSyncAsync(source);
        (await _client.Http.DeleteAsync($"/api/data-sources/{source}?data=retain", Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        await api.ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/data-sources/{source}/synchronisations", null, Ct), HttpStatusCode.Conflict);

        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent, "the agent is not sent to read a folder no longer protected");
        (await EventsAsync(waiting)).OfType<SyncFailed>().ShouldHaveSingleItem();
    }
}
