using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Backup.Storage.Format;
using Marten;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// Folder data sources through the API: include/exclude patterns that reach the agent's job, and removal from protection
/// with its data retained or deleted. Every refusal is a ProblemDetails and appends nothing.
/// </summary>
public sealed class DataSourceTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<JsonElement> ShouldBeRejectedAsync(Func<Task<HttpResponseMessage>> call, HttpStatusCode status) => api.ShouldBeRejectedAsync(call, status);

    private async Task<(EnrolAgentResponse Agent, Guid Group)> AgentAndGroupAsync() =>
        (await _client.EnrolAsync(), await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}"));

    private Task<HttpResponseMessage> AddAsync(Guid group, Guid agentId, string path, object? include = null, object? exclude = null) =>
        _client.Http.PostAsJsonAsync($"/api/protection-groups/{group}/data-sources", new { agentId, kind = "Folder", path, include, exclude }, Ct);

    private Task<HttpResponseMessage> PutFiltersAsync(Guid source, object body, string? ifMatch)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/api/data-sources/{source}/filters") { Content = JsonContent.Create(body) };
        if (ifMatch is not null) request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        return _client.Http.SendAsync(request, Ct);
    }

    private Task<HttpResponseMessage> RemoveAsync(Guid source, string? data, HttpClient? as_ = null, string? pin = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Delete, data is null ? $"/api/data-sources/{source}" : $"/api/data-sources/{source}?data={data}");
        if (pin is not null) request.Headers.Add("X-Security-Pin", pin);
        return (as_ ?? _client.Http).SendAsync(request, Ct);
    }

    private async Task<AgentJob> ClaimAsync(EnrolAgentResponse agent)
    {
        var poll = await _client.PollAsync(agent);
        poll.StatusCode.ShouldBe(HttpStatusCode.OK, await poll.Content.ReadAsStringAsync(Ct));
        return (await poll.Content.ReadFromJsonAsync<AgentJob>(ApiClient.Json, Ct))!;
    }

    /// <summary>A backup taken the way an agent takes it: claimed, one pack uploaded, committed.</summary>
    private async Task<Guid> CreatedRecoveryPointAsync(EnrolAgentResponse agent, Guid source)
    {
        var rp = await _client.RequestBackupAsync(source);
        (await ClaimAsync(agent)).RecoveryPointId.ShouldBe(rp);
        var pack = TestPacks.Build(RandomNumberGenerator.GetBytes(2000));
        var upload = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put,
            $"/api/agents/{agent.AgentId}/recovery-points/{rp}/packs/{pack.Id}", agent.Credential, new ByteArrayContent(pack.Bytes)), Ct);
        upload.StatusCode.ShouldBe(HttpStatusCode.OK, await upload.Content.ReadAsStringAsync(Ct));
        var commit = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/complete",
            agent.Credential, JsonContent.Create(new CompleteBackupRequest([pack.Chunks[0].ToString()], TestPacks.Base64(pack.Chunks), 0, 0, 0), options: Manifest.Json)), Ct);
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("status").GetString() == "Created");
        return rp;
    }

    private static string[] Strings(JsonElement array) => [.. array.EnumerateArray().Select(e => e.GetString()!)];

    private async Task<List<T>> EventsAsync<T>(string alias, Func<T, bool> where) where T : class
    {
        await using var session = api.Store.QuerySession();
        var events = await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == alias).ToListAsync(Ct);
        return [.. events.Select(e => (T)e.Data).Where(where)];
    }

    [Fact]
    public async Task Patterns_given_with_the_folder_are_shown_and_reach_the_agent_in_its_backup_job()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var added = await AddAsync(group, agent.AgentId, "/srv/office", include: new[] { "**/*.docx", "contracts/" }, exclude: new[] { "tmp/", "*.log" });
        added.StatusCode.ShouldBe(HttpStatusCode.Created, await added.Content.ReadAsStringAsync(Ct));
        var source = await ApiClient.IdAsync(added);

        var view = await _client.GetJsonAsync($"/api/data-sources/{source}");
        Strings(view.GetProperty("include")).ShouldBe(["**/*.docx", "contracts/"]);
        Strings(view.GetProperty("exclude")).ShouldBe(["tmp/", "*.log"]);

        var rp = await _client.RequestBackupAsync(source);
        var job = await ClaimAsync(agent);
        job.RecoveryPointId.ShouldBe(rp);
        job.Include.ShouldBe(["**/*.docx", "contracts/"]);
        job.Exclude.ShouldBe(["tmp/", "*.log"]);
    }

    [Fact]
    public async Task A_folder_without_patterns_sends_the_agent_none()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/all");
        var view = await _client.GetJsonAsync($"/api/data-sources/{source}");
        view.GetProperty("include").GetArrayLength().ShouldBe(0);
        view.GetProperty("exclude").GetArrayLength().ShouldBe(0);
        await _client.RequestBackupAsync(source);
        var job = await ClaimAsync(agent);
        (job.Include ?? []).ShouldBeEmpty();
        (job.Exclude ?? []).ShouldBeEmpty();
    }

    public static TheoryData<string[]?, string[]?, string> InvalidPatterns => new()
    {
        { ["/etc/passwd"], null, "include[0]" },
        { null, ["docs", "../secrets"], "exclude[1]" },
        { [""], null, "include[0]" },
        { null, ["C:/Windows"], "exclude[0]" },
        { [new string('a', 257)], null, "include[0]" },
        { [.. Enumerable.Range(0, 65).Select(i => $"*.{i}")], null, "include" },
    };

    [Theory]
    [MemberData(nameof(InvalidPatterns))]
    public async Task An_invalid_pattern_when_adding_a_folder_is_a_400_naming_the_field_and_nothing_is_appended(string[]? include, string[]? exclude, string field)
    {
        var (agent, group) = await AgentAndGroupAsync();
        var problem = await ShouldBeRejectedAsync(() => AddAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}", include, exclude), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, field);
    }

    [Fact]
    public async Task Changing_the_patterns_needs_the_current_etag_and_the_next_job_carries_the_new_ones()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/changing");
        var get = await _client.Http.GetAsync($"/api/data-sources/{source}", Ct);
        get.Headers.ETag!.ToString().ShouldBe("\"1\"");
        var body = new { include = new[] { "docs/" }, exclude = new[] { "docs/drafts/", "*.tmp" } };

        await ShouldBeRejectedAsync(() => PutFiltersAsync(source, body, ifMatch: null), (HttpStatusCode)428);
        var stale = await ShouldBeRejectedAsync(() => PutFiltersAsync(source, body, "\"7\""), HttpStatusCode.PreconditionFailed);
        stale.GetProperty("currentVersion").GetInt64().ShouldBe(1);
        var invalid = await ShouldBeRejectedAsync(() => PutFiltersAsync(source, new { exclude = new[] { "ok", "../../x" } }, "\"1\""), HttpStatusCode.BadRequest);
        Rejections.ShouldName(invalid, "exclude[1]");
        await ShouldBeRejectedAsync(() => PutFiltersAsync(Guid.NewGuid(), body, "*"), HttpStatusCode.NotFound);

        var put = await PutFiltersAsync(source, body, "\"1\"");
        put.StatusCode.ShouldBe(HttpStatusCode.OK, await put.Content.ReadAsStringAsync(Ct));
        put.Headers.ETag!.ToString().ShouldBe("\"2\"");
        var view = await _client.GetJsonAsync($"/api/data-sources/{source}");
        Strings(view.GetProperty("include")).ShouldBe(["docs/"]);
        Strings(view.GetProperty("exclude")).ShouldBe(["docs/drafts/", "*.tmp"]);

        await _client.RequestBackupAsync(source);
        var job = await ClaimAsync(agent);
        job.Include.ShouldBe(["docs/"]);
        job.Exclude.ShouldBe(["docs/drafts/", "*.tmp"]);

        // Clearing them is a change like any other: back to the whole folder.
        (await PutFiltersAsync(source, new { include = Array.Empty<string>(), exclude = Array.Empty<string>() }, "\"2\"")).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await _client.GetJsonAsync($"/api/data-sources/{source}")).GetProperty("exclude").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task Removing_with_retain_stops_protection_cancels_the_queued_backup_and_keeps_the_recovery_points()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/retired");
        var kept = await CreatedRecoveryPointAsync(agent, source);
        var queued = await _client.RequestBackupAsync(source);
        var operatorClient = await api.CreateClientAsync("operator");

        var removed = await RemoveAsync(source, "retain", operatorClient);
        removed.StatusCode.ShouldBe(HttpStatusCode.OK, await removed.Content.ReadAsStringAsync(Ct));
        var outcome = await removed.Content.ReadFromJsonAsync<JsonElement>(Ct);
        outcome.GetProperty("data").GetString().ShouldBe("Retain");
        outcome.GetProperty("backupsCancelled").GetInt32().ShouldBe(1);
        outcome.GetProperty("recoveryPointsDeleted").GetInt32().ShouldBe(0);

        var view = await _client.GetJsonAsync($"/api/data-sources/{source}");
        view.GetProperty("removedData").GetString().ShouldBe("Retain");
        view.GetProperty("removedAt").ValueKind.ShouldBe(JsonValueKind.String);
        (await _client.GetJsonAsync($"/api/protection-groups/{group}")).GetProperty("dataSourceIds").EnumerateArray().Select(e => e.GetGuid()).ShouldNotContain(source);

        // The queued backup is not handed out; it failed with the reason.
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var cancelled = await _client.WaitForAsync($"/api/recovery-points/{queued}", v => v.GetProperty("status").GetString() == "Failed");
        cancelled.GetProperty("failureReason").GetString()!.ShouldContain("removed from protection");
        // No new backups, but the recovery point it has is still there and can be restored.
        await ShouldBeRejectedAsync(() => _client.Http.PostAsync($"/api/data-sources/{source}/backups", null, Ct), HttpStatusCode.Conflict);
        var point = await _client.GetJsonAsync($"/api/recovery-points/{kept}");
        point.GetProperty("tier").GetString().ShouldBe("Disk");
        point.GetProperty("deleted").GetBoolean().ShouldBeFalse();
        var restore = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{kept}/restores", new { source = "Disk", targetPath = "/restore" }, Ct);
        restore.StatusCode.ShouldBe(HttpStatusCode.Accepted, await restore.Content.ReadAsStringAsync(Ct));

        // Removing it again is a conflict; the folder can be protected again, as a new data source.
        await ShouldBeRejectedAsync(() => RemoveAsync(source, "retain"), HttpStatusCode.Conflict);
        var again = await _client.AddFolderAsync(group, agent.AgentId, "/srv/retired");
        again.ShouldNotBe(source);
    }

    [Fact]
    public async Task Removing_with_delete_needs_an_admin_and_a_pin_and_deletes_every_recovery_point()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/doomed");
        var created = await CreatedRecoveryPointAsync(agent, source);
        var queued = await _client.RequestBackupAsync(source);
        var operatorClient = await api.CreateClientAsync("operator");

        var notAdmin = await ShouldBeRejectedAsync(() => RemoveAsync(source, "delete", operatorClient), HttpStatusCode.Forbidden);
        notAdmin.GetProperty("detail").GetString()!.ShouldContain("admin");
        var noPin = await ShouldBeRejectedAsync(() => RemoveAsync(source, "delete"), HttpStatusCode.Forbidden);
        noPin.GetProperty("detail").GetString()!.ShouldContain("X-Security-Pin");
        await ShouldBeRejectedAsync(() => RemoveAsync(source, "delete", pin: "12345678"), HttpStatusCode.Forbidden);

        var pinsUsed = (await EventsAsync<Backup.Commands.Access.SecurityPinUsed>("security_pin_used.v1", _ => true)).Count;
        var removed = await RemoveAsync(source, "DELETE", pin: await _client.PinAsync());
        removed.StatusCode.ShouldBe(HttpStatusCode.OK, await removed.Content.ReadAsStringAsync(Ct));
        var outcome = await removed.Content.ReadFromJsonAsync<JsonElement>(Ct);
        outcome.GetProperty("data").GetString().ShouldBe("Delete");
        outcome.GetProperty("recoveryPointsDeleted").GetInt32().ShouldBe(2, outcome.ToString());
        outcome.GetProperty("backupsCancelled").GetInt32().ShouldBe(1);

        var deleted = await EventsAsync<RecoveryPointDeleted>("recovery_point_deleted.v1", e => e.DataSourceId == source);
        deleted.Select(e => e.RecoveryPointId).ShouldBe([created, queued], ignoreOrder: true);
        var used = await EventsAsync<Backup.Commands.Access.SecurityPinUsed>("security_pin_used.v1", _ => true);
        used.Count.ShouldBe(pinsUsed + 1, "the PIN is spent with the deletion");
        used[^1].Operation.ShouldBe("remove-data-source-delete-data");

        var point = await _client.WaitForAsync($"/api/recovery-points/{created}", v => v.GetProperty("deleted").GetBoolean());
        point.GetProperty("tier").GetString().ShouldBe("None");
        point.GetProperty("deletionReason").GetString()!.ShouldContain("Deleted with its data source");
        (await _client.GetJsonAsync($"/api/data-sources/{source}")).GetProperty("removedData").GetString().ShouldBe("Delete");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);

        var restore = await ShouldBeRejectedAsync(
            () => _client.Http.PostAsJsonAsync($"/api/recovery-points/{created}/restores", new { source = "Disk", targetPath = "/restore" }, Ct),
            HttpStatusCode.Conflict);
        restore.GetProperty("detail").GetString()!.ShouldContain("deleted");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("purge")]
    [InlineData("1")]
    [InlineData("")]
    public async Task A_missing_or_unknown_data_value_is_a_400_naming_data(string? data)
    {
        var (agent, group) = await AgentAndGroupAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        var problem = await ShouldBeRejectedAsync(() => RemoveAsync(source, data), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "data");
    }

    [Fact]
    public async Task Removing_an_unknown_data_source_is_a_404_and_leaves_the_pin_usable()
    {
        await ShouldBeRejectedAsync(() => RemoveAsync(Guid.NewGuid(), "retain"), HttpStatusCode.NotFound);
        var pin = await _client.PinAsync();
        await ShouldBeRejectedAsync(() => RemoveAsync(Guid.NewGuid(), "delete", pin: pin), HttpStatusCode.NotFound);

        var (agent, group) = await AgentAndGroupAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/pin-reuse");
        (await RemoveAsync(source, "delete", pin: pin)).StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_backup_requested_a_moment_before_the_removal_is_refused_when_the_agent_asks_for_it()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/late");
        (await RemoveAsync(source, "retain")).StatusCode.ShouldBe(HttpStatusCode.OK);

        // As a scheduler working from a view read just before the removal would: the request lands after it.
        var late = Guid.CreateVersion7();
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.StartStream<RecoveryPoint>(late,
                new BackupRequested(late, source, group, agent.AgentId, "/srv/late", "scheduler", DateTimeOffset.UtcNow));
            await session.SaveChangesAsync(Ct);
        }

        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        var view = await _client.WaitForAsync($"/api/recovery-points/{late}", v => v.GetProperty("status").GetString() == "Failed");
        view.GetProperty("failureReason").GetString()!.ShouldContain("removed from protection");
    }
    [Fact]
    public async Task A_path_is_kept_normalised_so_spellings_of_one_folder_are_one_data_source()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var root = $"/srv/{Guid.NewGuid():N}";
        var added = await AddAsync(group, agent.AgentId, $"{root}//x/./");
        added.StatusCode.ShouldBe(HttpStatusCode.Created, await added.Content.ReadAsStringAsync(Ct));
        (await _client.GetJsonAsync($"/api/data-sources/{await ApiClient.IdAsync(added)}")).GetProperty("path").GetString().ShouldBe($"{root}/x");

        foreach (var spelling in new[] { $"{root}/x", $"{root}/./x", $"{root}//x", $"{root}/x/" })
            await ShouldBeRejectedAsync(() => AddAsync(group, agent.AgentId, spelling), HttpStatusCode.Conflict);
    }

    [Theory]
    [InlineData("/srv/../etc")]
    [InlineData("/srv/y/../x")]
    [InlineData("/..")]
    [InlineData("C:\\Data\\..\\Windows")]
    public async Task A_path_with_a_parent_segment_is_a_400_naming_it(string path)
    {
        var (agent, group) = await AgentAndGroupAsync();
        var problem = await ShouldBeRejectedAsync(() => AddAsync(group, agent.AgentId, path), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "path");
    }

    [Fact]
    public async Task A_folder_inside_or_around_a_protected_folder_of_the_same_agent_is_a_409_and_another_agent_may_protect_it()
    {
        var (agent, group) = await AgentAndGroupAsync();
        var root = $"/srv/{Guid.NewGuid():N}";
        (await AddAsync(group, agent.AgentId, $"{root}/data")).StatusCode.ShouldBe(HttpStatusCode.Created);

        foreach (var overlapping in new[] { $"{root}/data/sub", $"{root}/data/a/b", root, "/" })
        {
            var problem = await ShouldBeRejectedAsync(() => AddAsync(group, agent.AgentId, overlapping), HttpStatusCode.Conflict);
            problem.GetProperty("detail").GetString()!.ShouldContain($"{root}/data");
        }
        (await AddAsync(group, agent.AgentId, $"{root}/database")).StatusCode.ShouldBe(HttpStatusCode.Created); // a sibling sharing a prefix
        var other = await _client.EnrolAsync("another-machine");
        (await AddAsync(group, other.AgentId, $"{root}/data/sub")).StatusCode.ShouldBe(HttpStatusCode.Created);
    }
}
