using System.Net;
using System.Net.Http.Json;
using System.Text;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Backup.Storage.Format;
using Npgsql;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// A control character in any string a person sends (a body field or a query value) is a 400 naming the field, and nothing is
/// appended; the file names an agent reports from its machine keep every character Linux allows.
/// </summary>
public sealed class ControlCharacterTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> BodyFields() => new()
    {
        { "group name", "\0" }, { "group name", "\n" }, { "group name", "\u001b[31m" }, { "group name", "\u0085" },
        { "data-source path", "\0" }, { "data-source path", "\t" },
        { "restore targetPath", "\0" }, { "restore paths[i]", "\0" }, { "restore paths[i]", "\r" },
        { "key name", "\0" }, { "key name", "\n" },
        { "enrolment machineName", "\0" }, { "enrolment machineName", "\u007f" },
    };

    [Theory]
    [MemberData(nameof(BodyFields))]
    public async Task A_control_character_in_a_body_field_is_a_400_naming_it(string field, string control)
    {
        var bad = $"x{control}y";
        var (call, name) = field switch
        {
            "group name" => (Post("/api/protection-groups", new { name = bad }), "name"),
            "data-source path" => (await AddFolderAsync($"/srv/{bad}"), "path"),
            "restore targetPath" => (Post($"/api/recovery-points/{Guid.NewGuid()}/restores", new { source = "Disk", targetPath = $"/restore/{bad}" }), "targetPath"),
            "restore paths[i]" => (Post($"/api/recovery-points/{Guid.NewGuid()}/restores", new { source = "Disk", targetPath = "/restore", paths = new[] { "docs", bad } }), "paths[1]"),
            "key name" => (Post("/api/access/keys", new { name = bad, role = "operator" }), "name"),
            "enrolment machineName" => (await EnrolAsync(bad), "machineName"),
            _ => throw new ArgumentOutOfRangeException(nameof(field)),
        };
        var problem = await api.ShouldBeRejectedAsync(call, HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, name);
    }

    [Theory]
    [InlineData("/api/audit/events", "actor")]
    [InlineData("/api/audit/events", "eventType")]
    [InlineData("/api/items", "path")]
    [InlineData("/api/items", "name")]
    public async Task A_control_character_in_a_query_value_is_a_400_naming_it(string url, string parameter)
    {
        foreach (var control in new[] { "%00", "%0A", "%1B", "%C2%85" })
        {
            var problem = await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync($"{url}?{parameter}=a{control}b", Ct), HttpStatusCode.BadRequest);
            Rejections.ShouldName(problem, parameter);
        }
    }

    [Fact]
    public async Task A_nul_in_the_anonymous_enrolment_leaves_no_event_behind_not_even_a_tombstone()
    {
        var token = await _client.IssueTokenAsync();
        var problem = await api.ShouldBeRejectedAsync(
            () => api.CreateAnonymousClient().PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(token, "m\0"), Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "machineName");
        (await TombstonesAsync()).ShouldBe(0);
        // The token was not spent by the refused call.
        (await api.CreateAnonymousClient().PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(token, "m"), Ct)).StatusCode.ShouldBe(HttpStatusCode.Created);
    }

    [Fact]
    public async Task After_a_burst_of_bad_requests_a_valid_one_succeeds()
    {
        var token = await _client.IssueTokenAsync();
        var bad = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => (i % 4) switch
        {
            0 => _client.Http.PostAsJsonAsync("/api/protection-groups", new { name = $"g\0{i}" }, Ct),
            1 => api.CreateAnonymousClient().PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(token, $"m\0{i}"), Ct),
            2 => _client.Http.PostAsJsonAsync("/api/access/keys", new { name = $"k\0{i}", role = "auditor" }, Ct),
            _ => _client.Http.GetAsync($"/api/audit/events?actor=a%00{i}", Ct),
        }));
        bad.Select(r => r.StatusCode).ShouldAllBe(s => s == HttpStatusCode.BadRequest);

        var created = await _client.Http.PostAsJsonAsync("/api/protection-groups", new { name = $"after-the-burst-{Guid.NewGuid():N}" }, Ct);
        created.StatusCode.ShouldBe(HttpStatusCode.Created, await created.Content.ReadAsStringAsync(Ct));
        var listed = await _client.Http.GetAsync("/api/audit/events?limit=5", Ct);
        listed.StatusCode.ShouldBe(HttpStatusCode.OK, await listed.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task An_item_name_with_a_newline_reported_by_the_agent_is_catalogued_as_it_is()
    {
        var (agent, rp) = await _client.QueuedBackupAsync($"/srv/{Guid.NewGuid():N}");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var pack = TestPacks.Random(500);
        await _client.UploadPackAsync(agent, rp, pack);
        const string odd = "report\nfinal\u001b.txt"; // legal on Linux: a name may hold any byte but NUL and '/'
        var commit = await _client.CommitAsync(agent, rp, new CompleteBackupRequest(
            [pack.Chunks[0].ToString()], TestPacks.Base64(pack.Chunks), 1, 0, 500,
            Skipped: [new SkippedItem("locked\tfile", "Permission denied\nby the file system")],
            Items: [new CatalogEntry(odd, EntryKind.File, 500, DateTimeOffset.UnixEpoch)]));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
    }

    private Func<Task<HttpResponseMessage>> Post(string url, object body) => () => _client.Http.PostAsJsonAsync(url, body, Ct);

    private async Task<Func<Task<HttpResponseMessage>>> AddFolderAsync(string path)
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        return Post($"/api/protection-groups/{group}/data-sources", new { agentId = agent.AgentId, kind = "Folder", path });
    }

    private async Task<Func<Task<HttpResponseMessage>>> EnrolAsync(string machineName)
    {
        var token = await _client.IssueTokenAsync();
        return () => api.CreateAnonymousClient().PostAsync("/api/agents/enrol",
            new StringContent($$"""{"token":"{{token}}","machineName":{{System.Text.Json.JsonSerializer.Serialize(machineName)}}}""", Encoding.UTF8, "application/json"), Ct);
    }

    private async Task<long> TombstonesAsync()
    {
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM \"{api.Schema}\".mt_events WHERE type = 'tombstone'", connection);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }
}
