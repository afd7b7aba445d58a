using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>Conventions every endpoint keeps: unknown query parameters are refused by name; read resources carry ETags and answer If-None-Match.</summary>
public sealed class ApiConventionTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("/api/recovery-points?grupId=00000000-0000-0000-0000-000000000001", "grupId")]
    [InlineData("/api/jobs?kind=Backup&sort=desc", "sort")]
    [InlineData("/api/compliance?as_of=2026-01-01", "as_of")]
    [InlineData("/api/items?name=*.txt&page=2", "page")]
    [InlineData("/api/protection-groups?filter=x", "filter")]
    public async Task A_query_parameter_the_operation_does_not_take_is_a_400_naming_it(string url, string parameter)
    {
        var problem = await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync(url, Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, parameter);
    }

    [Fact]
    public async Task Known_parameters_bind_whatever_their_case()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        var rp = await _client.RequestBackupAsync(source);
        var page = await _client.WaitForAsync($"/api/recovery-points?DATASOURCEID={source}&Limit=5", p => p.GetProperty("items").GetArrayLength() == 1);
        page.GetProperty("items")[0].GetProperty("id").GetGuid().ShouldBe(rp);
    }

    [Fact]
    public async Task A_recovery_point_is_304_while_unchanged_and_gets_a_new_etag_when_it_changes()
    {
        var (agent, rp) = await _client.QueuedBackupAsync($"/srv/{Guid.NewGuid():N}");
        await _client.WaitForAsync($"/api/recovery-points/{rp}", r => r.GetProperty("status").GetString() == "Requested");
        var first = await _client.Http.GetAsync($"/api/recovery-points/{rp}", Ct);
        var etag = first.Headers.ETag.ShouldNotBeNull();
        etag.IsWeak.ShouldBeTrue();

        var again = new HttpRequestMessage(HttpMethod.Get, $"/api/recovery-points/{rp}") { Headers = { IfNoneMatch = { etag } } };
        var notModified = await _client.Http.SendAsync(again, Ct);
        notModified.StatusCode.ShouldBe(HttpStatusCode.NotModified);
        (await notModified.Content.ReadAsByteArrayAsync(Ct)).ShouldBeEmpty();
        notModified.Headers.ETag.ShouldBe(etag);

        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK); // the agent claims it: Requested → Running
        await _client.WaitForAsync($"/api/recovery-points/{rp}", r => r.GetProperty("status").GetString() == "Running");
        var changed = await _client.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"/api/recovery-points/{rp}") { Headers = { IfNoneMatch = { etag } } }, Ct);
        changed.StatusCode.ShouldBe(HttpStatusCode.OK);
        changed.Headers.ETag.ShouldNotBe(etag);
        (await changed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString().ShouldBe("Running");
    }

    [Fact]
    public async Task A_protection_group_keeps_its_version_etag_and_answers_if_none_match_with_it()
    {
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var read = await _client.Http.GetAsync($"/api/protection-groups/{group}", Ct);
        read.Headers.ETag.ShouldNotBeNull().Tag.ShouldBe("\"1\"");
        var conditional = new HttpRequestMessage(HttpMethod.Get, $"/api/protection-groups/{group}") { Headers = { IfNoneMatch = { new EntityTagHeaderValue("\"1\"") } } };
        (await _client.Http.SendAsync(conditional, Ct)).StatusCode.ShouldBe(HttpStatusCode.NotModified);
        var stale = new HttpRequestMessage(HttpMethod.Get, $"/api/protection-groups/{group}") { Headers = { IfNoneMatch = { new EntityTagHeaderValue("\"0\"") } } };
        (await _client.Http.SendAsync(stale, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }
}
