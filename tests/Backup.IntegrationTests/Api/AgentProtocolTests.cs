using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace Backup.IntegrationTests.Api;

/// <summary>The agent's side of a backup spoken over HTTP against the real API, store and projections.</summary>
public sealed class AgentProtocolTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<(EnrolAgentResponse Agent, Guid RecoveryPoint)> QueuedBackupAsync() => _client.QueuedBackupAsync();

    private Task<HttpResponseMessage> PollAsync(EnrolAgentResponse agent) => _client.PollAsync(agent);

    private Task<PackStored> UploadPackAsync(EnrolAgentResponse agent, Guid rp, TestPack pack) => _client.UploadPackAsync(agent, rp, pack);

    private Task<HttpResponseMessage> CommitAsync(EnrolAgentResponse agent, Guid rp, CompleteBackupRequest request) => _client.CommitAsync(agent, rp, request);

    private Task<List<ChunkId>> KnownChunksAsync(EnrolAgentResponse agent) => _client.KnownChunksAsync(agent);

    [Fact]
    public async Task Two_polls_racing_for_one_job_hand_it_out_once()
    {
        var (agent, rp) = await QueuedBackupAsync();
        var polls = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => PollAsync(agent)));
        polls.Count(p => p.StatusCode == HttpStatusCode.OK).ShouldBe(1);
        polls.Count(p => p.StatusCode == HttpStatusCode.NoContent).ShouldBe(4);
        var job = await polls.Single(p => p.StatusCode == HttpStatusCode.OK).Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct);
        job!.RecoveryPointId.ShouldBe(rp);
        job.Kind.ShouldBe(JobKind.Backup);
        job.Path.ShouldBe("/srv/files");
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Under_a_fast_server_clock_the_agent_is_given_its_lease_in_real_seconds()
    {
        // The agent heartbeats on its own (real) clock: a 2-minute lease on a clock running 60 times as fast lasts 2 real seconds.
        var now = DateTimeOffset.UtcNow;
        await using var fast = api.WithHost(b => b.ConfigureServices(s =>
            s.AddSingleton<TimeProvider>(new Backup.Commands.Common.ScaledTimeProvider(now, now, 60))));
        var client = new ApiClient(fast.CreateClient());
        var (agent, _) = await client.QueuedBackupAsync();
        var poll = await client.PollAsync(agent);
        poll.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await poll.Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!.LeaseSeconds.ShouldBe(2);

        var (other, _) = await _client.QueuedBackupAsync();
        (await (await PollAsync(other)).Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!.LeaseSeconds.ShouldBe(120, "the real clock: the lease as configured");
    }

    [Fact]
    public async Task Packs_and_commit_make_a_recovery_point_on_disk_with_its_totals_and_index()
    {
        var (agent, rp) = await QueuedBackupAsync();
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var data = TestPacks.Build(RandomNumberGenerator.GetBytes(3000), RandomNumberGenerator.GetBytes(5000));
        var tree = TestPacks.Build("{\"pretend\":\"tree\"}"u8.ToArray());
        (await UploadPackAsync(agent, rp, data)).AlreadyPresent.ShouldBeFalse();
        (await UploadPackAsync(agent, rp, data)).AlreadyPresent.ShouldBeTrue(); // a retried upload is not a second disk write
        await UploadPackAsync(agent, rp, tree);
        // The list is repository-wide (other tests of this fixture store chunks too): ours are in it, once each.
        var known = await KnownChunksAsync(agent);
        known.ShouldBeUnique();
        known.ShouldContain(data.Chunks[0]);
        known.ShouldContain(data.Chunks[1]);
        known.ShouldContain(tree.Chunks[0]);

        var commit = await CommitAsync(agent, rp, new CompleteBackupRequest(
            [tree.Chunks[0].ToString()], TestPacks.Base64(data.Chunks), Files: 2, Directories: 1, BytesRead: 8000,
            Skipped: [new SkippedItem("docs/locked.db", "Permission denied")]));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));

        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("status").GetString() == "Created");
        view.GetProperty("tier").GetString().ShouldBe("Disk");
        view.GetProperty("files").GetInt32().ShouldBe(2);
        view.GetProperty("directories").GetInt32().ShouldBe(1);
        view.GetProperty("bytesRead").GetInt64().ShouldBe(8000);
        view.GetProperty("packsWrittenToDisk").GetInt32().ShouldBe(2);
        view.GetProperty("packCount").GetInt32().ShouldBe(2);
        view.GetProperty("bytesNew").GetInt64().ShouldBe(data.Bytes.Length + tree.Bytes.Length);
        view.GetProperty("partial").GetBoolean().ShouldBeTrue();
        var skipped = view.GetProperty("skipped").EnumerateArray().Single();
        (skipped.GetProperty("path").GetString(), skipped.GetProperty("reason").GetString()).ShouldBe(("docs/locked.db", "Permission denied"));
        File.Exists(Path.Combine(api.DiskStore, "packs", data.Id[..2], data.Id)).ShouldBeTrue();
        var manifest = Manifest.FromBytes(File.ReadAllBytes(Path.Combine(api.DiskStore, "manifests", $"{rp:N}.json")));
        manifest.Validate().ShouldBeEmpty();
        manifest.Tree.ShouldBe([tree.Chunks[0].ToString()]);
        manifest.Packs.ShouldBe(new[] { data.Id, tree.Id }.Order(StringComparer.Ordinal).ToList());

        var list = await _client.GetJsonAsync($"/api/recovery-points?dataSourceId={view.GetProperty("dataSourceId").GetGuid()}");
        list.GetProperty("items").EnumerateArray().Select(r => r.GetProperty("id").GetGuid()).ShouldBe([rp]);
    }

    [Fact]
    public async Task Two_backups_storing_the_same_new_chunk_at_once_both_succeed_and_the_chunk_is_indexed_once()
    {
        for (var round = 0; round < 4; round++)
        {
            var chunk = RandomNumberGenerator.GetBytes(20_000);
            var runs = await Task.WhenAll(Enumerable.Range(0, 3).Select(async _ =>
            {
                var (agent, rp) = await QueuedBackupAsync();
                (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
                return (agent, rp, pack: TestPacks.Build(chunk, RandomNumberGenerator.GetBytes(500)));
            }));
            // Each pack holds the shared chunk: their index inserts race on it; the losers retry and keep their own chunk.
            await Task.WhenAll(runs.Select(r => UploadPackAsync(r.agent, r.rp, r.pack)));
            foreach (var (agent, rp, pack) in runs)
            {
                var tree = TestPacks.Random(100);
                await UploadPackAsync(agent, rp, tree);
                (await CommitAsync(agent, rp, new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64(pack.Chunks), 1, 0, 20_500)))
                    .StatusCode.ShouldBe(HttpStatusCode.NoContent);
            }
            (await KnownChunksAsync(runs[0].agent)).Count(c => c == runs[0].pack.Chunks[0]).ShouldBe(1);
        }
    }

    [Fact]
    public async Task A_second_backup_referencing_chunks_another_run_stored_needs_no_new_pack()
    {
        var agent = await _client.EnrolAsync();
        var dataSource = await _client.AddFolderAsync(await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}"), agent.AgentId, "/srv/files");
        var first = await _client.RequestBackupAsync(dataSource);
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var data = TestPacks.Build(RandomNumberGenerator.GetBytes(4000));
        var tree = TestPacks.Build(RandomNumberGenerator.GetBytes(100));
        await UploadPackAsync(agent, first, data);
        await UploadPackAsync(agent, first, tree);
        (await CommitAsync(agent, first, new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64(data.Chunks), 1, 0, 4000)))
            .StatusCode.ShouldBe(HttpStatusCode.NoContent);

        // Same agent, same data source, next run: every chunk is known, so the commit alone makes the recovery point.
        var second = await _client.RequestBackupAsync(dataSource);
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await CommitAsync(agent, second, new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64(data.Chunks), 1, 0, 4000)))
            .StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var view = await _client.WaitForAsync($"/api/recovery-points/{second}", v => v.GetProperty("status").GetString() == "Created");
        view.GetProperty("packsWrittenToDisk").GetInt32().ShouldBe(0);
        view.GetProperty("packCount").GetInt32().ShouldBe(2);
    }

    [Fact]
    public async Task A_commit_referencing_a_chunk_the_server_does_not_hold_is_refused()
    {
        var (agent, rp) = await QueuedBackupAsync();
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var tree = TestPacks.Build(RandomNumberGenerator.GetBytes(100));
        await UploadPackAsync(agent, rp, tree);
        var ghost = TestPacks.Build(RandomNumberGenerator.GetBytes(10)).Chunks; // built, never uploaded
        var before = await api.EventCountAsync();
        var commit = await CommitAsync(agent, rp, new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64(ghost), 1, 0, 10));
        commit.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        var detail = await commit.Content.ReadAsStringAsync(Ct);
        detail.ShouldContain("1 chunk(s) the backup references are not stored on the server");
        detail.ShouldContain(ghost[0].ToString()); // the tree's chunk is held: only the ghost is named
        (await api.EventCountAsync()).ShouldBe(before);
        File.Exists(Path.Combine(api.DiskStore, "manifests", $"{rp:N}.json")).ShouldBeFalse();
    }

    [Theory]
    [InlineData("not base64 at all!")]
    [InlineData("AAAA")] // 3 bytes: not a whole number of 32-byte ids
    public async Task A_commit_whose_chunk_list_is_malformed_is_refused(string chunks)
    {
        var (agent, rp) = await QueuedBackupAsync();
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var before = await api.EventCountAsync();
        var commit = await CommitAsync(agent, rp, new CompleteBackupRequest([new string('a', 64)], chunks, 1, 0, 10));
        commit.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity);
        (await commit.Content.ReadAsStringAsync(Ct)).ShouldContain("'chunks'");
        (await api.EventCountAsync()).ShouldBe(before);
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
