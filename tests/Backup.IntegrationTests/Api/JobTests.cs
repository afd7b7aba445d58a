using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Projections.RecoveryPoints;
using Backup.Storage.Contracts;
using Marten;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// The job history (async view, real daemon): backups, vault copies, restores, checks and expiries with their state,
/// times, bytes and reasons; filters, and a cursor that pages without gaps or repeats. Each test filters by its own
/// data source or group: other tests of the fixture add jobs too.
/// </summary>
public sealed class JobTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement[] Items(JsonElement page) => page.GetProperty("items").EnumerateArray().ToArray();

    /// <summary>The jobs of a filter once <paramref name="done"/> holds for them (the view is projected asynchronously).</summary>
    private async Task<JsonElement[]> JobsAsync(string filter, Func<JsonElement[], bool> done) =>
        Items(await _client.WaitForAsync($"/api/jobs?{filter}&limit=500", p => done(Items(p))));

    private static string State(JsonElement job) => job.GetProperty("state").GetString()!;

    private static string Kind(JsonElement job) => job.GetProperty("kind").GetString()!;

    [Fact]
    public async Task A_completed_backup_is_a_succeeded_job_with_its_bytes_and_duration()
    {
        var backup = await _client.CreatedBackupAsync(bytesRead: 12000);

        var job = (await JobsAsync($"dataSourceId={backup.DataSourceId}", j => j.Length == 1 && State(j[0]) == "Succeeded")).Single();
        Kind(job).ShouldBe("Backup");
        job.GetProperty("id").GetGuid().ShouldBe(backup.RecoveryPointId);
        job.GetProperty("recoveryPointId").GetGuid().ShouldBe(backup.RecoveryPointId);
        job.GetProperty("groupId").GetGuid().ShouldBe(backup.GroupId);
        job.GetProperty("agentId").GetGuid().ShouldBe(backup.Agent.AgentId);
        job.GetProperty("tier").GetString().ShouldBe("Disk");
        job.GetProperty("requestedBy").GetString().ShouldBe("user:bootstrap-admin");
        job.GetProperty("bytes").GetInt64().ShouldBe(backup.PackBytes);
        job.GetProperty("bytesRead").GetInt64().ShouldBe(12000);
        job.GetProperty("packs").GetInt32().ShouldBe(3);
        var started = job.GetProperty("startedAt").GetDateTimeOffset();
        var finished = job.GetProperty("finishedAt").GetDateTimeOffset();
        started.ShouldBeGreaterThanOrEqualTo(job.GetProperty("requestedAt").GetDateTimeOffset());
        finished.ShouldBeGreaterThanOrEqualTo(started);
        job.GetProperty("durationSeconds").GetDouble().ShouldBe(Math.Round((finished - started).TotalSeconds, 3), 0.002);
        job.GetProperty("failureReason").ValueKind.ShouldBe(JsonValueKind.Null);

        (await _client.GetJsonAsync($"/api/jobs/{backup.RecoveryPointId}")).GetProperty("state").GetString().ShouldBe("Succeeded");
    }

    [Fact]
    public async Task A_failed_backup_shows_why()
    {
        var (agent, rp) = await _client.QueuedBackupAsync($"/srv/{Guid.NewGuid():N}");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var fail = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/fail", agent.Credential,
            JsonContent.Create(new FailJobRequest("wrong passphrase: the repository key could not be unwrapped"))), Ct);
        fail.StatusCode.ShouldBe(HttpStatusCode.NoContent, await fail.Content.ReadAsStringAsync(Ct));

        var job = await _client.WaitForAsync($"/api/jobs/{rp}", j => State(j) == "Failed");
        job.GetProperty("failureReason").GetString().ShouldBe("wrong passphrase: the repository key could not be unwrapped");
        job.GetProperty("finishedAt").ValueKind.ShouldBe(JsonValueKind.String);
        var failed = Items(await _client.GetJsonAsync($"/api/jobs?agentId={agent.AgentId}&state=Failed"));
        failed.Select(j => j.GetProperty("id").GetGuid()).ShouldBe([rp]);
        Items(await _client.GetJsonAsync($"/api/jobs?agentId={agent.AgentId}&state=Succeeded")).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_vault_copy_a_check_a_restore_and_an_expiry_are_jobs_of_their_kinds_under_the_backups_data_source()
    {
        var backup = await _client.CreatedBackupAsync();
        await api.CopyToVaultAsync(backup.RecoveryPointId);
        (await _client.Http.PostAsync($"/api/recovery-points/{backup.RecoveryPointId}/check?tier=Vault", null, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        File.Delete(Path.Combine(api.DiskStore, "packs", backup.Packs[1].Id[..2], backup.Packs[1].Id));
        (await _client.Http.PostAsync($"/api/recovery-points/{backup.RecoveryPointId}/check?tier=Disk", null, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var restore = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}/restores", new { source = "Vault", targetPath = "/alt" }, Ct);
        restore.StatusCode.ShouldBe(HttpStatusCode.Accepted, await restore.Content.ReadAsStringAsync(Ct));
        var restoreId = await ApiClient.IdAsync(restore);
        (await _client.PollAsync(backup.Agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var done = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{backup.Agent.AgentId}/restores/{restoreId}/complete",
            backup.Agent.Credential, JsonContent.Create(new CompleteRestoreRequest(3, 12345))), Ct);
        done.StatusCode.ShouldBe(HttpStatusCode.NoContent, await done.Content.ReadAsStringAsync(Ct));
        await using (var session = api.Store.LightweightSession())
        {
            session.SetHeader(CommandMetadata.ActorHeader, "worker:retention");
            session.Events.Append(backup.RecoveryPointId, new RecoveryPointExpired(backup.RecoveryPointId, StorageTier.Disk, "older than the 2 days kept on disk", DateTimeOffset.UtcNow));
            await session.SaveChangesAsync(Ct);
        }

        // Filtering by the data source finds them all: the view learns it from the recovery point for jobs whose events do not name it.
        var jobs = await JobsAsync($"dataSourceId={backup.DataSourceId}", j => j.Length == 6 && j.All(x => State(x) is "Succeeded" or "Failed"));
        jobs.Select(Kind).ShouldBe(["Retention", "Restore", "ConsistencyCheck", "ConsistencyCheck", "VaultCopy", "Backup"]); // newest first
        jobs.ShouldAllBe(j => j.GetProperty("recoveryPointId").GetGuid() == backup.RecoveryPointId
            && j.GetProperty("groupId").GetGuid() == backup.GroupId && j.GetProperty("agentId").GetGuid() == backup.Agent.AgentId);

        var copy = jobs.Single(j => Kind(j) == "VaultCopy");
        State(copy).ShouldBe("Succeeded");
        copy.GetProperty("requestedBy").GetString().ShouldBe("worker:vault-copy");
        copy.GetProperty("bytes").GetInt64().ShouldBe(backup.PackBytes);
        copy.GetProperty("packs").GetInt32().ShouldBe(3);
        copy.GetProperty("durationSeconds").ValueKind.ShouldBe(JsonValueKind.Number);

        var checks = jobs.Where(j => Kind(j) == "ConsistencyCheck").ToDictionary(j => j.GetProperty("tier").GetString()!);
        State(checks["Vault"]).ShouldBe("Succeeded");
        checks["Vault"].GetProperty("bytes").GetInt64().ShouldBe(backup.PackBytes);
        State(checks["Disk"]).ShouldBe("Failed");
        checks["Disk"].GetProperty("failureReason").GetString()!.ShouldContain($"{backup.Packs[1].Id} missing");

        var restored = jobs.Single(j => Kind(j) == "Restore");
        restored.GetProperty("id").GetGuid().ShouldBe(restoreId);
        State(restored).ShouldBe("Succeeded");
        restored.GetProperty("tier").GetString().ShouldBe("Vault");
        restored.GetProperty("bytes").GetInt64().ShouldBe(12345);
        restored.GetProperty("files").GetInt32().ShouldBe(3);

        var expiry = jobs.Single(j => Kind(j) == "Retention");
        expiry.GetProperty("tier").GetString().ShouldBe("Disk");
        expiry.GetProperty("requestedBy").GetString().ShouldBe("worker:retention");
        expiry.GetProperty("detail").GetString().ShouldBe("older than the 2 days kept on disk");

        // The other filters narrow the same set.
        Items(await _client.GetJsonAsync($"/api/jobs?groupId={backup.GroupId}&kind=ConsistencyCheck")).Length.ShouldBe(2);
        Items(await _client.GetJsonAsync($"/api/jobs?agentId={backup.Agent.AgentId}&kind=VaultCopy")).Single().GetProperty("id").GetGuid()
            .ShouldBe(copy.GetProperty("id").GetGuid());
        Items(await _client.GetJsonAsync($"/api/jobs?dataSourceId={backup.DataSourceId}&state=Failed")).Select(Kind).ShouldBe(["ConsistencyCheck"]);
    }

    [Fact]
    public async Task A_vault_copy_that_failed_and_was_retried_is_one_job_that_failed_then_succeeded()
    {
        var backup = await _client.CreatedBackupAsync();
        var pack = backup.Packs[0];
        var path = Path.Combine(api.DiskStore, "packs", pack.Id[..2], pack.Id);
        File.Move(path, path + ".away");
        await Should.ThrowAsync<Exception>(() => api.CopyToVaultAsync(backup.RecoveryPointId));

        var failed = (await JobsAsync($"dataSourceId={backup.DataSourceId}&kind=VaultCopy", j => j.Length == 1 && State(j[0]) == "Failed")).Single();
        failed.GetProperty("failureReason").GetString().ShouldNotBeNullOrWhiteSpace();
        failed.GetProperty("attempts").GetInt32().ShouldBe(1);

        File.Move(path + ".away", path);
        await api.CopyToVaultAsync(backup.RecoveryPointId);
        var copy = (await JobsAsync($"dataSourceId={backup.DataSourceId}&kind=VaultCopy", j => j.Length == 1 && State(j[0]) == "Succeeded")).Single();
        copy.GetProperty("id").GetGuid().ShouldBe(failed.GetProperty("id").GetGuid());
        copy.GetProperty("attempts").GetInt32().ShouldBe(2);
        copy.GetProperty("failureReason").ValueKind.ShouldBe(JsonValueKind.Null);
        copy.GetProperty("bytes").GetInt64().ShouldBe(backup.PackBytes);
        copy.GetProperty("requestedAt").GetDateTimeOffset().ShouldBe(failed.GetProperty("requestedAt").GetDateTimeOffset());
    }

    [Fact]
    public async Task Lost_leases_put_a_backup_and_a_restore_back_in_the_queue_each_as_its_own_job()
    {
        var backup = await _client.CreatedBackupAsync();
        var rp = Guid.CreateVersion7();
        var restoreId = Guid.CreateVersion7();
        var agentId = backup.Agent.AgentId;
        var now = DateTimeOffset.UtcNow;
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.StartStream<RecoveryPoint>(rp,
                new BackupRequested(rp, backup.DataSourceId, backup.GroupId, agentId, "/srv", "scheduler", now),
                new BackupStarted(rp, agentId, now),
                new JobLeaseExpired(rp, agentId, 1, "no heartbeat", now.AddMinutes(2)),
                new JobRequeued(rp, agentId, 1, now.AddMinutes(3), now.AddMinutes(2)));
            session.Events.StartStream<Restore>(restoreId,
                new RestoreRequested(restoreId, backup.RecoveryPointId, backup.DataSourceId, agentId, StorageTier.Disk, "/r", "user:olga", now),
                new RestoreStarted(restoreId, agentId, now),
                new JobLeaseExpired(restoreId, agentId, 1, "no heartbeat", now.AddMinutes(2)),
                new RestoreFailed(restoreId, backup.RecoveryPointId, "agent lost: lease expired 1 time", now.AddMinutes(2)));
            await session.SaveChangesAsync(Ct);
        }

        var jobs = await JobsAsync($"dataSourceId={backup.DataSourceId}", j => j.Length == 3 && j.Any(x => Kind(x) == "Restore" && State(x) == "Failed"));
        var requeued = jobs.Single(j => j.GetProperty("id").GetGuid() == rp);
        (Kind(requeued), State(requeued)).ShouldBe(("Backup", "Requested"));
        requeued.GetProperty("leaseExpiries").GetInt32().ShouldBe(1);
        requeued.GetProperty("startedAt").ValueKind.ShouldBe(JsonValueKind.Null);
        requeued.GetProperty("requestedBy").GetString().ShouldBe("scheduler");
        var restore = jobs.Single(j => j.GetProperty("id").GetGuid() == restoreId);
        (Kind(restore), State(restore)).ShouldBe(("Restore", "Failed"));
        restore.GetProperty("leaseExpiries").GetInt32().ShouldBe(1);
        restore.GetProperty("groupId").GetGuid().ShouldBe(backup.GroupId);
        restore.GetProperty("failureReason").GetString().ShouldBe("agent lost: lease expired 1 time");
        restore.GetProperty("durationSeconds").GetDouble().ShouldBe(120, 0.001);
    }

    [Fact]
    public async Task Pages_walk_every_job_of_a_data_source_once_newest_first_and_time_filters_narrow_them()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/a");
        var other = await _client.AddFolderAsync(group, agent.AgentId, "/srv/b");
        var requested = new List<Guid>();
        for (var i = 0; i < 5; i++) requested.Add(await _client.RequestBackupAsync(source));
        await _client.RequestBackupAsync(other);
        await JobsAsync($"groupId={group}", j => j.Length == 6);

        var seen = new List<Guid>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await _client.GetJsonAsync($"/api/jobs?dataSourceId={source}&limit=2" + (after is null ? "" : $"&after={after}"));
            seen.AddRange(Items(page).Select(j => j.GetProperty("id").GetGuid()));
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Null ? null : page.GetProperty("nextAfter").GetString();
            pages++;
        }
        while (after is not null);
        pages.ShouldBe(3);
        seen.ShouldBe(Enumerable.Reverse(requested).ToList()); // no gaps, no repeats, newest first

        Items(await _client.GetJsonAsync($"/api/jobs?dataSourceId={source}&kind=Backup&state=Requested")).Length.ShouldBe(5);
        Items(await _client.GetJsonAsync($"/api/jobs?dataSourceId={source}&kind=Restore")).ShouldBeEmpty();
        var requestedAt = (await _client.GetJsonAsync($"/api/jobs/{requested[0]}")).GetProperty("requestedAt").GetDateTimeOffset();
        var later = Uri.EscapeDataString(requestedAt.AddMinutes(1).ToString("O"));
        var first = Uri.EscapeDataString(requestedAt.ToString("O"));
        Items(await _client.GetJsonAsync($"/api/jobs?dataSourceId={source}&from={later}")).ShouldBeEmpty();
        Items(await _client.GetJsonAsync($"/api/jobs?dataSourceId={source}&from={first}&to={later}")).Length.ShouldBe(5);
        Items(await _client.GetJsonAsync($"/api/jobs?dataSourceId={source}&to={first}")).ShouldBeEmpty(); // to is exclusive
    }

    [Theory]
    [InlineData("kind=Tape", "kind")]
    [InlineData("kind=9", "kind")]
    [InlineData("state=Done", "state")]
    [InlineData("dataSourceId=not-a-guid", "dataSourceId")]
    [InlineData("groupId=42", "groupId")]
    [InlineData("agentId=x", "agentId")]
    [InlineData("from=yesterday", "from")]
    [InlineData("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to")]
    [InlineData("after=not-a-cursor", "after")]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=501", "limit")]
    [InlineData("limit=many", "limit")]
    public async Task Bad_filters_are_a_400_naming_the_parameter(string query, string parameter)
    {
        var problem = await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync($"/api/jobs?{query}", Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, parameter);
    }

    [Fact]
    public async Task A_recovery_point_cursor_is_not_a_job_cursor()
    {
        var problem = await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync($"/api/jobs?after={SequenceCursor.RecoveryPoints.Encode(5)}", Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "after");
    }

    [Fact]
    public async Task An_unknown_job_is_a_404_problem()
    {
        await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync($"/api/jobs/{Guid.NewGuid()}", Ct), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_auditor_reads_the_job_history_and_an_agent_cannot()
    {
        var backup = await _client.CreatedBackupAsync();
        var auditor = new ApiClient(await api.CreateClientAsync("auditor"));
        await auditor.WaitForAsync($"/api/jobs?dataSourceId={backup.DataSourceId}", p => Items(p).Length == 1);
        (await auditor.Http.GetAsync($"/api/jobs/{backup.RecoveryPointId}", Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var asAgent = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Get, $"/api/jobs?dataSourceId={backup.DataSourceId}", backup.Agent.Credential), Ct);
        asAgent.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }
}
