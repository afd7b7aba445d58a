using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;

namespace Backup.IntegrationTests.Api;

/// <summary>Every rejected request answers with ProblemDetails naming what is wrong, and appends nothing.</summary>
public sealed class BadInputTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<JsonElement> ShouldBeRejectedAsync(Func<Task<HttpResponseMessage>> call, HttpStatusCode status) => api.ShouldBeRejectedAsync(call, status);

    private static void ShouldName(JsonElement problem, string field) => Rejections.ShouldName(problem, field);

    [Fact]
    public async Task Blank_group_name_is_a_400_naming_the_field()
    {
        var problem = await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/protection-groups", new { name = "   " }, Ct), HttpStatusCode.BadRequest);
        ShouldName(problem, "name");
    }

    [Fact]
    public async Task Missing_group_name_is_a_400_naming_the_field()
    {
        var problem = await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/protection-groups", new { }, Ct), HttpStatusCode.BadRequest);
        ShouldName(problem, "name");
    }

    [Fact]
    public async Task Malformed_json_is_a_400()
    {
        await ShouldBeRejectedAsync(
            () => _client.Http.PostAsync("/api/protection-groups", new StringContent("{\"name\": ", Encoding.UTF8, "application/json"), Ct),
            HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Duplicate_group_name_is_a_409_whatever_the_case()
    {
        var name = $"Finance {Guid.NewGuid():N}";
        await _client.CreateGroupAsync(name);
        await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/protection-groups", new { name = name.ToUpperInvariant() }, Ct), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Data_source_path_must_be_absolute()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var problem = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/protection-groups/{group}/data-sources", new { agentId = agent.AgentId, kind = "Folder", path = "relative/dir" }, Ct),
            HttpStatusCode.BadRequest);
        ShouldName(problem, "path");
    }

    [Fact]
    public async Task Unknown_data_source_kind_is_a_400_naming_the_field()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var problem = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/protection-groups/{group}/data-sources", new { agentId = agent.AgentId, kind = "Tape", path = "/srv" }, Ct),
            HttpStatusCode.BadRequest);
        ShouldName(problem, "kind");
    }

    [Fact]
    public async Task Data_source_in_an_unknown_group_is_a_404()
    {
        var agent = await _client.EnrolAsync();
        await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/protection-groups/{Guid.NewGuid()}/data-sources", new { agentId = agent.AgentId, kind = "Folder", path = "/srv" }, Ct),
            HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Data_source_on_an_unknown_agent_is_a_422()
    {
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/protection-groups/{group}/data-sources", new { agentId = Guid.NewGuid(), kind = "Folder", path = "/srv" }, Ct),
            HttpStatusCode.UnprocessableEntity);
    }

    [Fact]
    public async Task The_same_folder_cannot_be_protected_twice()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        await _client.AddFolderAsync(group, agent.AgentId, "/srv/data");
        var other = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/protection-groups/{other}/data-sources", new { agentId = agent.AgentId, kind = "Folder", path = "/srv/data/" }, Ct),
            HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Wrong_enrolment_token_is_a_401()
    {
        var token = await _client.IssueTokenAsync();
        var forged = token[..^4] + "AAAA";
        await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(forged, "m"), Ct), HttpStatusCode.Unauthorized);
        await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest("not-a-token", "m"), Ct), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Reused_enrolment_token_is_a_403()
    {
        var token = await _client.IssueTokenAsync();
        (await _client.Http.PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(token, "first"), Ct)).StatusCode.ShouldBe(HttpStatusCode.Created);
        await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(token, "second"), Ct), HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_token_raced_by_two_machines_enrols_only_one()
    {
        var token = await _client.IssueTokenAsync();
        var attempts = await Task.WhenAll(Enumerable.Range(0, 4).Select(i =>
            _client.Http.PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(token, $"racer-{i}"), Ct)));
        attempts.Count(r => r.StatusCode == HttpStatusCode.Created).ShouldBe(1);
        attempts.Where(r => r.StatusCode != HttpStatusCode.Created).ShouldAllBe(r => r.StatusCode == HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Agent_endpoints_need_a_valid_credential()
    {
        var agent = await _client.EnrolAsync();
        await ShouldBeRejectedAsync(() => api.CreateAnonymousClient().PostAsync($"/api/agents/{agent.AgentId}/jobs/next", null, Ct), HttpStatusCode.Unauthorized);
        var forged = agent.Credential[..^4] + "AAAA";
        await ShouldBeRejectedAsync(
            () => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/next", forged), Ct),
            HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task An_agent_using_another_agents_credential_is_a_403()
    {
        var alice = await _client.EnrolAsync("alice");
        var bob = await _client.EnrolAsync("bob");
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, alice.AgentId, "/home/alice");
        await _client.RequestBackupAsync(source);

        await ShouldBeRejectedAsync(
            () => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{alice.AgentId}/jobs/next", bob.Credential), Ct),
            HttpStatusCode.Forbidden);
        // Bob polling as himself sees none of Alice's work.
        var own = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{bob.AgentId}/jobs/next", bob.Credential), Ct);
        own.StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Backup_of_an_unknown_data_source_is_a_404()
    {
        await ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/data-sources/{Guid.NewGuid()}/backups", null, Ct), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Unknown_recovery_point_is_a_404_problem()
    {
        var response = await _client.Http.GetAsync($"/api/recovery-points/{Guid.NewGuid()}", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
    }

    [Fact]
    public async Task Recovery_point_list_limit_out_of_range_is_a_400_naming_it()
    {
        var response = await _client.Http.GetAsync("/api/recovery-points?limit=0", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        ShouldName(JsonDocument.Parse(await response.Content.ReadAsStringAsync(Ct)).RootElement, "limit");
    }

    [Fact]
    public async Task A_pack_that_does_not_match_its_id_is_refused_and_not_kept()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/data");
        var rp = await _client.RequestBackupAsync(source);
        var job = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/next", agent.Credential), Ct);
        job.StatusCode.ShouldBe(HttpStatusCode.OK);

        var bytes = RandomNumberGenerator.GetBytes(4096);
        var claimedId = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("something else")));
        await ShouldBeRejectedAsync(
            () => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/packs/{claimedId}", agent.Credential, new ByteArrayContent(bytes)), Ct),
            HttpStatusCode.UnprocessableEntity);
        Directory.EnumerateFiles(Path.Combine(api.DiskStore, "packs"), "*", SearchOption.AllDirectories).ShouldBeEmpty();
        Directory.EnumerateFiles(Path.Combine(api.DiskStore, "tmp")).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("random bytes")]
    [InlineData("truncated pack")]
    [InlineData("trailer lies")]
    public async Task A_pack_with_the_right_hash_but_a_broken_structure_is_refused_and_not_kept(string damage)
    {
        var (agent, rp) = await _client.QueuedBackupAsync("/data");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var good = TestPacks.Build(RandomNumberGenerator.GetBytes(5000), RandomNumberGenerator.GetBytes(7000)).Bytes;
        var bytes = damage switch
        {
            "random bytes" => RandomNumberGenerator.GetBytes(4096),
            "truncated pack" => good[..^10],
            _ => Lie(good),
        };
        var id = Convert.ToHexStringLower(SHA256.HashData(bytes)); // the hash matches: only the structure is wrong
        var problem = await ShouldBeRejectedAsync(
            () => _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/packs/{id}", agent.Credential, new ByteArrayContent(bytes)), Ct),
            HttpStatusCode.UnprocessableEntity);
        problem.GetProperty("detail").GetString()!.ShouldContain("not a valid pack");
        Directory.EnumerateFiles(Path.Combine(api.DiskStore, "packs"), "*", SearchOption.AllDirectories).ShouldBeEmpty();
        Directory.EnumerateFiles(Path.Combine(api.DiskStore, "tmp")).ShouldBeEmpty();

        // The first blob's length in the trailer grows by one: the blobs no longer end where the trailer starts.
        static byte[] Lie(byte[] pack)
        {
            var copy = (byte[])pack.Clone();
            var firstRecord = copy.Length - 12 - 2 * 40;
            copy[firstRecord + 32]++;
            return copy;
        }
    }

    [Fact]
    public async Task Restore_from_the_vault_before_the_online_copy_is_a_409()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/data");
        var rp = await _client.RequestBackupAsync(source);
        // Not even created yet: restoring it from anywhere is a conflict, not a silent no-op.
        await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/recovery-points/{rp}/restores", new { source = "Vault", targetPath = "/restore" }, Ct),
            HttpStatusCode.Conflict);
        await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/recovery-points/{Guid.NewGuid()}/restores", new { source = "Disk", targetPath = "/restore" }, Ct),
            HttpStatusCode.NotFound);
        var problem = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/recovery-points/{rp}/restores", new { source = "Tape", targetPath = "/restore" }, Ct),
            HttpStatusCode.BadRequest);
        ShouldName(problem, "source");
    }

    [Fact]
    public async Task Restore_item_paths_must_stay_inside_the_recovery_point_and_the_existing_item_choice_must_be_known()
    {
        var problem = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/recovery-points/{Guid.NewGuid()}/restores", new { source = "Disk", targetPath = "/restore", paths = new[] { "docs", "../etc/shadow" } }, Ct),
            HttpStatusCode.BadRequest);
        ShouldName(problem, "paths[1]");
        // U+FFFD starts the escape of a byte that is not UTF-8 (docs/api.md): one that stands for no such byte names no item.
        problem = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/recovery-points/{Guid.NewGuid()}/restores", new { source = "Disk", targetPath = "/restore", paths = new[] { "caf\uFFFDE9.txt", "x\uFFFD2F..\uFFFD2Fetc" } }, Ct),
            HttpStatusCode.BadRequest);
        ShouldName(problem, "paths[1]");
        problem = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/recovery-points/{Guid.NewGuid()}/restores", new { source = "Disk", targetPath = "/restore", ifExists = "Sometimes" }, Ct),
            HttpStatusCode.BadRequest);
        ShouldName(problem, "ifExists");
    }
    [Theory]
    [InlineData("/api/jobs?after=", "-1")]
    [InlineData("/api/jobs?after=", "!!")]
    [InlineData("/api/recovery-points?after=", "-1")]
    [InlineData("/api/recovery-points?after=", "!!")]
    [InlineData("/api/items?name=*&after=", "-1")]
    [InlineData("/api/items?name=*&after=", "!!")]
    [InlineData("/api/compliance?after=", "-1")]
    [InlineData("/api/compliance?after=", "!!")]
    public async Task A_malformed_cursor_is_a_400_naming_after(string list, string cursor)
    {
        var problem = await ShouldBeRejectedAsync(() => _client.Http.GetAsync(list + Uri.EscapeDataString(cursor), Ct), HttpStatusCode.BadRequest);
        ShouldName(problem, "after");
    }

    [Theory]
    [InlineData("/api/protection-groups", """{"name":"unknown-field","colour":"red"}""", "colour")]
    [InlineData("/api/access/keys", """{"name":"unknown-field","role":"auditor","expiresAt":"2030-01-01T00:00:00Z"}""", "expiresAt")]
    [InlineData("/api/enrolment-tokens", """{"validForMinutes":5,"validForHours":1}""", "validForHours")]
    [InlineData("/api/recovery-points/0190a5f0-0000-7000-8000-000000000000/restores", """{"source":"Disk","targetPath":"/restore","overwrite":true}""", "overwrite")]
    public async Task An_unknown_body_field_is_a_400_naming_it(string url, string body, string field)
    {
        var problem = await ShouldBeRejectedAsync(() => _client.Http.PostAsync(url, new StringContent(body, Encoding.UTF8, "application/json"), Ct), HttpStatusCode.BadRequest);
        ShouldName(problem, field);
    }

    [Theory]
    [InlineData("bootstrap-admin\u200b")]
    [InlineData("alice\nbob")]
    [InlineData("\u202eevil")]
    [InlineData("two words")]
    [InlineData("semi;colon")]
    [InlineData("tab\tbed")]
    public async Task A_key_name_of_anything_but_letters_digits_and_dot_dash_underscore_at_is_a_400(string name)
    {
        var problem = await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/access/keys", new { name, role = "auditor" }, Ct), HttpStatusCode.BadRequest);
        ShouldName(problem, "name");
    }

    [Theory]
    [InlineData("bootstrap-\u0430dmin")] // a Cyrillic a
    [InlineData("B00TSTRAP-ADMIN")]
    [InlineData("bootstrap-admi\u0144")]
    public async Task A_key_name_confusable_with_the_bootstrap_admin_is_a_409(string name)
    {
        await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/access/keys", new { name, role = "admin" }, Ct), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task A_key_name_confusable_with_an_issued_one_is_a_409_and_a_decomposed_one_a_400()
    {
        var name = $"jos\u00e9.{Guid.NewGuid():N}"[..20];
        var issued = await _client.Http.PostAsJsonAsync("/api/access/keys", new { name, role = "auditor" }, Ct);
        issued.StatusCode.ShouldBe(HttpStatusCode.Created, await issued.Content.ReadAsStringAsync(Ct));

        // Without the accent, with a Cyrillic o, or with a zero for the O it reads the same in the audit trail.
        foreach (var lookalike in new[] { name.Replace("\u00e9", "e"), name.Replace("jos", "j\u043es"), name.Replace("jos", "J0S") })
            await ShouldBeRejectedAsync(() => _client.Http.PostAsJsonAsync("/api/access/keys", new { name = lookalike, role = "auditor" }, Ct), HttpStatusCode.Conflict);
        // Decomposed (e and a combining acute) it is not NFC.
        var problem = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync("/api/access/keys", new { name = name.Replace("\u00e9", "e\u0301"), role = "auditor" }, Ct), HttpStatusCode.BadRequest);
        ShouldName(problem, "name");
    }
}
