using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>"Back up the group now" through the API: what it queues for each agent, and the requests it refuses with nothing appended.</summary>
public sealed class GroupRunRequestTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Each_member_is_queued_for_its_own_agent_at_the_same_instant()
    {
        var first = await _client.EnrolAsync("tier-1");
        var second = await _client.EnrolAsync("tier-2");
        var group = await _client.CreateGroupAsync($"Tiers {Guid.NewGuid():N}");
        var one = await _client.AddFolderAsync(group, first.AgentId, "/srv/app");
        var two = await _client.AddFolderAsync(group, second.AgentId, "/var/lib/app");

        var response = await _client.Http.PostAsync($"/api/protection-groups/{group}/backups", null, Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var members = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("members").EnumerateArray()
            .ToDictionary(m => m.GetProperty("dataSourceId").GetGuid(), m => m.GetProperty("recoveryPointId").GetGuid());
        members.Keys.ShouldBe([one, two], ignoreOrder: true);
        foreach (var (agent, source) in new[] { (first, one), (second, two) })
        {
            var poll = await _client.PollAsync(agent);
            poll.StatusCode.ShouldBe(HttpStatusCode.OK);
            var job = await poll.Content.ReadFromJsonAsync<JsonElement>(Ct);
            job.GetProperty("kind").GetString().ShouldBe("Backup");
            job.GetProperty("recoveryPointId").GetGuid().ShouldBe(members[source]);
        }
    }

    [Fact]
    public async Task An_unknown_group_is_a_404_and_a_group_that_protects_nothing_a_409_with_nothing_appended()
    {
        var unknown = await api.ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/protection-groups/{Guid.NewGuid()}/backups", null, Ct),
            HttpStatusCode.NotFound);
        unknown.GetProperty("detail").GetString()!.ShouldContain("Protection group");

        var empty = await _client.CreateGroupAsync($"Empty {Guid.NewGuid():N}");
        var conflict = await api.ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/protection-groups/{empty}/backups", null, Ct),
            HttpStatusCode.Conflict);
        conflict.GetProperty("detail").GetString()!.ShouldContain("protects no data source");
    }

    [Fact]
    public async Task A_run_that_does_not_exist_is_a_404_and_a_bad_limit_a_400_naming_it()
    {
        (await _client.Http.GetAsync($"/api/group-runs/{Guid.NewGuid()}", Ct)).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        var group = await _client.CreateGroupAsync($"Listed {Guid.NewGuid():N}");
        var problem = await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync($"/api/protection-groups/{group}/runs?limit=0", Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "limit");
    }

    [Fact]
    public async Task A_group_is_set_to_run_together_with_if_match_and_a_body_without_together_is_a_400_naming_it()
    {
        var group = await _client.CreateGroupAsync($"Together {Guid.NewGuid():N}");
        HttpRequestMessage Put(object body)
        {
            var request = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{group}/group-runs") { Content = JsonContent.Create(body) };
            request.Headers.TryAddWithoutValidation("If-Match", "*");
            return request;
        }

        var problem = await api.ShouldBeRejectedAsync(() => _client.Http.SendAsync(Put(new { }), Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "together");

        (await _client.Http.SendAsync(Put(new { together = true }), Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await _client.GetJsonAsync($"/api/protection-groups/{group}")).GetProperty("runsTogether").GetBoolean().ShouldBeTrue();
    }
}
