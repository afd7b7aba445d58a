extern alias workers;
using System.Net;
using System.Net.Http.Json;
using Backup.Commands.Dispatching;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Marten;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using workers::Backup.Workers.Dispatching;

namespace Backup.IntegrationTests.Dispatching;

/// <summary>
/// Leases on claimed jobs, over HTTP against the real API (with a 2 s lease) and the worker's reaper on the same
/// store: an agent that stops heartbeating loses the job, which is queued again and finally failed.
/// </summary>
public sealed class JobLeaseTests : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(2);
    private readonly ApiFactory _fixture;
    private readonly WebApplicationFactory<Program> _api;
    private readonly ApiClient _client;

    public JobLeaseTests(ApiFactory api)
    {
        _fixture = api;
        _api = api.WithHost(b => b.UseSetting("Backup:JobLeases:Duration", Lease.ToString()));
        _client = new ApiClient(_api.CreateClient());
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDocumentStore Store => _api.Services.GetRequiredService<IDocumentStore>();

    private static readonly TimeSpan Pickup = TimeSpan.FromHours(4);

    private LeaseReaper Reaper(int maxAttempts = 3) => new(Store, TimeProvider.System,
        Options.Create(new JobLeaseOptions
        {
            Duration = Lease, MaxAttempts = maxAttempts, RetryBackoff = TimeSpan.Zero, MaxRetryBackoff = TimeSpan.Zero, PickupTimeout = Pickup,
        }),
        NullLogger<LeaseReaper>.Instance);

    private static DateTimeOffset AfterTheLease => DateTimeOffset.UtcNow + Lease + TimeSpan.FromSeconds(1);

    private Task<(EnrolAgentResponse Agent, Guid RecoveryPoint)> QueuedBackupAsync() => _client.QueuedBackupAsync();

    private Task<HttpResponseMessage> PollAsync(EnrolAgentResponse agent) => _client.PollAsync(agent);

    private Task<HttpResponseMessage> HeartbeatAsync(EnrolAgentResponse agent, Guid jobId) =>
        _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/{jobId}/heartbeat", agent.Credential), Ct);

    private Task<HttpResponseMessage> ReleaseAsync(EnrolAgentResponse agent, Guid jobId, string? reason = null) =>
        _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/{jobId}/release", agent.Credential,
            reason is null ? null : JsonContent.Create(new ReleaseJobRequest(reason))), Ct);

    private async Task<AgentJob> ClaimAsync(EnrolAgentResponse agent)
    {
        var response = await PollAsync(agent);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return (await response.Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!;
    }

    /// <summary>A re-queued job is not handed out before its NotBefore (the reaper's "now"); poll until it is.</summary>
    private async Task<AgentJob> ClaimAgainAsync(EnrolAgentResponse agent)
    {
        var deadline = DateTimeOffset.UtcNow.AddSeconds(15);
        while (true)
        {
            var response = await PollAsync(agent);
            if (response.StatusCode == HttpStatusCode.OK) return (await response.Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!;
            response.StatusCode.ShouldBe(HttpStatusCode.NoContent);
            DateTimeOffset.UtcNow.ShouldBeLessThan(deadline, "the re-queued job never became claimable");
            await Task.Delay(200, Ct);
        }
    }

    private async Task<QueuedJob> JobAsync(Guid id)
    {
        await using var session = Store.QuerySession();
        return (await session.LoadAsync<QueuedJob>(id, Ct))!;
    }

    private async Task<List<object>> EventsAsync(Guid id)
    {
        await using var session = Store.QuerySession();
        return (await session.Events.FetchStreamAsync(id, token: Ct)).Select(e => e.Data).ToList();
    }

    [Fact]
    public async Task A_claim_holds_a_lease_that_the_agent_is_told_about()
    {
        var (agent, rp) = await QueuedBackupAsync();
        var before = DateTimeOffset.UtcNow;
        var job = await ClaimAsync(agent);

        job.JobId.ShouldBe(rp);
        job.LeaseSeconds.ShouldBe(2);
        var queued = await JobAsync(rp);
        queued.State.ShouldBe(QueuedJobState.Running);
        queued.LeaseExpiresAt.ShouldNotBeNull().ShouldBeInRange(before + Lease - TimeSpan.FromSeconds(1), DateTimeOffset.UtcNow + Lease);
    }

    [Fact]
    public async Task A_job_without_heartbeats_is_expired_requeued_and_claimable_again()
    {
        var (agent, rp) = await QueuedBackupAsync();
        await ClaimAsync(agent);

        (await Reaper().ReapAsync(AfterTheLease, Ct)).ShouldBeGreaterThanOrEqualTo(1);

        var events = await EventsAsync(rp);
        events.OfType<JobLeaseExpired>().ShouldHaveSingleItem().Attempt.ShouldBe(1);
        events[^1].ShouldBeOfType<JobRequeued>();
        var queued = await JobAsync(rp);
        queued.State.ShouldBe(QueuedJobState.Queued);
        queued.LeaseExpiries.ShouldBe(1);
        queued.NotBefore.ShouldNotBeNull();

        // The old run's heartbeat is refused: the lease is gone.
        (await HeartbeatAsync(agent, rp)).StatusCode.ShouldBe(HttpStatusCode.Conflict);

        // Operators see it waiting again, and why.
        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("leaseExpiries").GetInt32() == 1);
        view.GetProperty("status").GetString().ShouldBe("Requested");
        view.GetProperty("lastLeaseExpiry").GetString()!.ShouldContain("no heartbeat");

        var again = await ClaimAgainAsync(agent);
        again.JobId.ShouldBe(rp);
        (await JobAsync(rp)).State.ShouldBe(QueuedJobState.Running);
    }

    [Fact]
    public async Task After_max_attempts_the_recovery_point_fails_with_agent_lost()
    {
        var (agent, rp) = await QueuedBackupAsync();
        await ClaimAsync(agent);
        var reaper = Reaper(maxAttempts: 2);

        (await reaper.ReapAsync(AfterTheLease, Ct)).ShouldBeGreaterThanOrEqualTo(1);
        await ClaimAgainAsync(agent);
        (await reaper.ReapAsync(AfterTheLease, Ct)).ShouldBeGreaterThanOrEqualTo(1);

        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("status").GetString() == "Failed");
        view.GetProperty("failureReason").GetString().ShouldBe("agent lost: lease expired 2 times");
        (await JobAsync(rp)).State.ShouldBe(QueuedJobState.Finished);
        (await PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Heartbeats_keep_the_lease_alive()
    {
        var (agent, rp) = await QueuedBackupAsync();
        await ClaimAsync(agent);

        for (var i = 0; i < 3; i++)
        {
            await Task.Delay(Lease / 2, Ct);
            var beat = await HeartbeatAsync(agent, rp);
            beat.StatusCode.ShouldBe(HttpStatusCode.OK, await beat.Content.ReadAsStringAsync(Ct));
            var renewal = (await beat.Content.ReadFromJsonAsync<JobLeaseRenewal>(ApiClient.Json, Ct))!;
            renewal.LeaseExpiresAt.ShouldBeGreaterThan(DateTimeOffset.UtcNow);
            (await JobAsync(rp)).LeaseExpiresAt.ShouldNotBeNull().ShouldBe(renewal.LeaseExpiresAt, TimeSpan.FromMilliseconds(1));
        }

        // Past the claim's lease, but within the renewed one.
        await Reaper().ReapAsync(DateTimeOffset.UtcNow + Lease / 2, Ct);
        (await JobAsync(rp)).State.ShouldBe(QueuedJobState.Running);
        (await EventsAsync(rp)).OfType<JobLeaseExpired>().ShouldBeEmpty();
    }

    [Fact]
    public async Task Heartbeat_is_only_for_the_owning_agents_running_job()
    {
        var (agent, rp) = await QueuedBackupAsync();
        var stranger = await _client.EnrolAsync("machine-2");

        (await HeartbeatAsync(agent, rp)).StatusCode.ShouldBe(HttpStatusCode.Conflict, "queued, not running yet");
        await ClaimAsync(agent);
        (await HeartbeatAsync(stranger, rp)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await HeartbeatAsync(agent, Guid.NewGuid())).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        var wrongCredential = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post,
            $"/api/agents/{agent.AgentId}/jobs/{rp}/heartbeat", stranger.Credential), Ct);
        wrongCredential.StatusCode.ShouldBeOneOf(HttpStatusCode.Forbidden, HttpStatusCode.Unauthorized);
        (await HeartbeatAsync(agent, rp)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Two_reapers_racing_expire_a_lease_exactly_once()
    {
        var (agent, rp) = await QueuedBackupAsync();
        await ClaimAsync(agent);
        var now = AfterTheLease;

        for (var round = 0; round < 3; round++)
            await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Reaper().ReapAsync(now, Ct)));

        var events = await EventsAsync(rp);
        events.OfType<JobLeaseExpired>().ShouldHaveSingleItem();
        events.OfType<JobRequeued>().ShouldHaveSingleItem();
    }

    [Fact]
    public async Task A_released_job_is_queued_again_at_once_and_counts_no_lease_expiry()
    {
        var (agent, rp) = await QueuedBackupAsync();
        await ClaimAsync(agent);

        var released = await ReleaseAsync(agent, rp);
        released.StatusCode.ShouldBe(HttpStatusCode.NoContent, await released.Content.ReadAsStringAsync(Ct));

        var events = await EventsAsync(rp);
        events[^1].ShouldBeOfType<JobReleased>().Reason.ShouldBe("agent stopping");
        events.OfType<JobLeaseExpired>().ShouldBeEmpty();
        var queued = await JobAsync(rp);
        queued.State.ShouldBe(QueuedJobState.Queued);
        queued.NotBefore.ShouldBeNull("a release waits for no backoff");
        queued.LeaseExpiries.ShouldBe(0);

        // The stopped run cannot go on; the next poll takes the job straight away, and it runs like any claim.
        (await HeartbeatAsync(agent, rp)).StatusCode.ShouldBe(HttpStatusCode.Conflict);
        (await ClaimAsync(agent)).JobId.ShouldBe(rp);
        (await HeartbeatAsync(agent, rp)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var custody = await _client.WaitForAsync($"/api/recovery-points/{rp}/custody",
            c => c.GetProperty("steps").EnumerateArray().Count(s => s.GetProperty("step").GetString() == "Started") == 2);
        var released1 = custody.GetProperty("steps").EnumerateArray().Single(s => s.GetProperty("step").GetString() == "Released");
        released1.GetProperty("reason").GetString().ShouldBe("agent stopping");
        released1.GetProperty("actor").GetString().ShouldBe($"agent:{agent.AgentId}");
        var view = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("status").GetString() == "Running");
        view.GetProperty("leaseExpiries").GetInt32().ShouldBe(0);
    }

    [Fact]
    public async Task Jobs_their_agent_does_not_pick_up_in_time_fail_with_the_reason_and_running_ones_are_left_alone()
    {
        var (idle, backup) = await QueuedBackupAsync();
        var sync = await _client.RequestSyncAsync((await JobAsync(backup)).DataSourceId);
        var done = await _client.CreatedBackupAsync();
        var restoreRequest = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{done.RecoveryPointId}/restores",
            new { source = "Disk", targetPath = $"/restore/{Guid.NewGuid():N}" }, Ct);
        var restore = await ApiClient.IdAsync(restoreRequest);
        var (busy, running) = await QueuedBackupAsync();
        await ClaimAsync(busy);
        var reaper = Reaper();

        // Not yet: within the timeout nothing happens.
        await reaper.FailUnclaimedAsync(DateTimeOffset.UtcNow + Pickup - TimeSpan.FromMinutes(1), Ct);
        (await EventsAsync(backup)).ShouldNotContain(e => e is Backup.Commands.RecoveryPoints.RecoveryPointFailed);

        await reaper.FailUnclaimedAsync(DateTimeOffset.UtcNow + Pickup + TimeSpan.FromSeconds(1), Ct);
        var failed = (await EventsAsync(backup)).OfType<Backup.Commands.RecoveryPoints.RecoveryPointFailed>().ShouldHaveSingleItem();
        failed.Reason.ShouldStartWith("agent did not pick the job up within 04:00:00 of ");
        failed.Reason.ShouldEndWith("(last poll: never)");
        (await EventsAsync(sync)).OfType<Backup.Commands.Synchronising.SyncFailed>().ShouldHaveSingleItem().Reason.ShouldContain("did not pick the job up");
        (await EventsAsync(restore)).OfType<Backup.Commands.Restores.RestoreFailed>().ShouldHaveSingleItem().Reason.ShouldContain("last poll: 20");
        (await EventsAsync(running)).ShouldNotContain(e => e is Backup.Commands.RecoveryPoints.RecoveryPointFailed, "a claimed job is the lease's business");
        (await PollAsync(idle)).StatusCode.ShouldBe(HttpStatusCode.NoContent, "the failed jobs left the queue");
    }

    [Fact]
    public async Task A_released_restore_is_queued_again_at_once()
    {
        var backup = await _client.CreatedBackupAsync();
        var request = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}/restores",
            new { source = "Disk", targetPath = $"/restore/{Guid.NewGuid():N}" }, Ct);
        request.StatusCode.ShouldBe(HttpStatusCode.Accepted, await request.Content.ReadAsStringAsync(Ct));
        var restoreId = await ApiClient.IdAsync(request);
        (await ClaimAsync(backup.Agent)).JobId.ShouldBe(restoreId);

        var released = await ReleaseAsync(backup.Agent, restoreId, "service restart");
        released.StatusCode.ShouldBe(HttpStatusCode.NoContent, await released.Content.ReadAsStringAsync(Ct));

        (await EventsAsync(restoreId))[^1].ShouldBeOfType<JobReleased>().Reason.ShouldBe("service restart");
        (await ClaimAsync(backup.Agent)).JobId.ShouldBe(restoreId);
    }

    [Fact]
    public async Task Release_is_only_for_the_owning_agents_running_job()
    {
        var (agent, rp) = await QueuedBackupAsync();
        var stranger = await _client.EnrolAsync("machine-2");

        (await _fixture.ShouldBeRejectedAsync(() => ReleaseAsync(agent, rp), HttpStatusCode.Conflict))
            .GetProperty("detail").GetString()!.ShouldContain("not running");
        await ClaimAsync(agent);
        await _fixture.ShouldBeRejectedAsync(() => ReleaseAsync(stranger, rp), HttpStatusCode.Forbidden);
        await _fixture.ShouldBeRejectedAsync(() => ReleaseAsync(agent, Guid.NewGuid()), HttpStatusCode.NotFound);
        Rejections.ShouldName(await _fixture.ShouldBeRejectedAsync(() => ReleaseAsync(agent, rp, new string('x', 501)), HttpStatusCode.BadRequest), "reason");
        (await JobAsync(rp)).State.ShouldBe(QueuedJobState.Running);

        // Once the job has ended there is nothing to give back.
        var failed = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/fail",
            agent.Credential, JsonContent.Create(new FailJobRequest("disk full"))), Ct);
        failed.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await _fixture.ShouldBeRejectedAsync(() => ReleaseAsync(agent, rp), HttpStatusCode.Conflict);
    }

    public async ValueTask DisposeAsync() => await _api.DisposeAsync();
}
