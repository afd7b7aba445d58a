using System.Net;
using System.Net.Http.Json;
using Backup.Commands.Dispatching;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Marten;

namespace Backup.IntegrationTests.Dispatching;

/// <summary>
/// Long polling (<c>jobs/next?wait=</c>): an idle agent's poll is held on the server and answered with a job as soon as one
/// is queued for it, whichever API host queued it (the signal goes through PostgreSQL), instead of at the agent's next poll.
/// </summary>
public sealed class LongPollTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Longer than the test could wait by accident: a poll that answers with the job was woken by it, not by its timeout.</summary>
    private const int Wait = 60;

    private Task<HttpResponseMessage> HeldPollAsync(EnrolAgentResponse agent, int wait = Wait) =>
        _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/next?wait={wait}", agent.Credential), Ct);

    /// <summary>
    /// Until the poll has looked at the agent's queue (it records the agent's contact first): from then on it is held. A poll
    /// that has already answered (a refusal, an empty answer) is left to the caller's assertions.
    /// </summary>
    private async Task PollStartedAsync(EnrolAgentResponse agent, Task poll)
    {
        await using var session = api.Store.QuerySession();
        while (!poll.IsCompleted && await session.LoadAsync<AgentContact>(agent.AgentId, Ct) is null) await Task.Delay(20, Ct);
    }

    private async Task<(EnrolAgentResponse Agent, Guid Source)> IdleAgentAsync()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        return (agent, await _client.AddFolderAsync(group, agent.AgentId, "/srv/files"));
    }

    [Fact]
    public async Task A_backup_requested_while_the_agents_poll_is_held_is_handed_to_that_poll()
    {
        var (agent, source) = await IdleAgentAsync();
        var poll = HeldPollAsync(agent);
        await PollStartedAsync(agent, poll);

        var recoveryPoint = await _client.RequestBackupAsync(source);

        using var response = await poll;
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        var job = (await response.Content.ReadFromJsonAsync<AgentJob>(Ct))!;
        job.JobId.ShouldBe(recoveryPoint);
        job.Kind.ShouldBe(JobKind.Backup);
    }

    [Fact]
    public async Task A_job_queued_through_another_API_host_wakes_the_poll_held_by_this_one()
    {
        var (agent, source) = await IdleAgentAsync();
        var poll = HeldPollAsync(agent);
        await PollStartedAsync(agent, poll);

        using var other = api.WithHost(_ => { });
        var recoveryPoint = await new ApiClient(other.CreateClient()).RequestBackupAsync(source);

        using var response = await poll;
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        (await response.Content.ReadFromJsonAsync<AgentJob>(Ct))!.JobId.ShouldBe(recoveryPoint);
    }

    [Fact]
    public async Task A_poll_held_with_nothing_queued_ends_empty_and_says_it_was_held()
    {
        var (agent, _) = await IdleAgentAsync();

        using var response = await HeldPollAsync(agent, wait: 1);

        response.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        response.Headers.Contains(AgentHeaders.PollHeld).ShouldBeTrue("the agent polls again at once only when the server held its poll");
    }

    [Fact]
    public async Task A_poll_without_wait_answers_at_once_as_before()
    {
        var (agent, _) = await IdleAgentAsync();

        using var response = await _client.PollAsync(agent);

        response.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        response.Headers.Contains(AgentHeaders.PollHeld).ShouldBeFalse();
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("61")]
    [InlineData("soon")]
    public async Task A_wait_outside_0_to_60_seconds_is_rejected_naming_it(string wait)
    {
        var (agent, _) = await IdleAgentAsync();

        var problem = await api.ShouldBeRejectedAsync(() => _client.Http.SendAsync(
            ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/next?wait={wait}", agent.Credential), Ct), HttpStatusCode.BadRequest);

        Rejections.ShouldName(problem, "wait");
    }
}
