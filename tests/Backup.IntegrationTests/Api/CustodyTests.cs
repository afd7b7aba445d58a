using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections.Auditing;
using Marten;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// The chain of custody of one recovery point, read from the event log: every step in log order with its actor, event
/// and audit-chain hash, and the ids of the packs the agent actually uploaded.
/// </summary>
public sealed class CustodyTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static JsonElement[] Steps(JsonElement custody) => custody.GetProperty("steps").EnumerateArray().ToArray();

    [Fact]
    public async Task A_created_checked_copied_and_expired_recovery_point_shows_every_step_in_order_with_the_packs_uploaded()
    {
        var backup = await _client.CreatedBackupAsync(bytesRead: 12000);
        (await _client.Http.PostAsync($"/api/recovery-points/{backup.RecoveryPointId}/check", null, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        await api.CopyToVaultAsync(backup.RecoveryPointId);
        await using (var session = api.Store.LightweightSession())
        {
            session.SetHeader(CommandMetadata.ActorHeader, "worker:retention");
            session.Events.Append(backup.RecoveryPointId, new RecoveryPointExpired(backup.RecoveryPointId, StorageTier.Disk, "older than the 2 days kept on disk", DateTimeOffset.UtcNow));
            await session.SaveChangesAsync(Ct);
        }

        // The audit chain links events in the daemon: wait until it has reached this recovery point's last step.
        var custody = await _client.WaitForAsync($"/api/recovery-points/{backup.RecoveryPointId}/custody",
            c => Steps(c).All(s => s.GetProperty("auditHash").ValueKind == JsonValueKind.String));
        custody.GetProperty("dataSourceId").GetGuid().ShouldBe(backup.DataSourceId);
        custody.GetProperty("groupId").GetGuid().ShouldBe(backup.GroupId);
        custody.GetProperty("agentId").GetGuid().ShouldBe(backup.Agent.AgentId);
        var steps = Steps(custody);
        steps.Select(s => s.GetProperty("step").GetString()).ShouldBe([
            "Requested", "Started", "PackWrittenToDisk", "PackWrittenToDisk", "PackWrittenToDisk", "Created", "Checked",
            "VaultTransferStarted", "PackUploadedToVault", "PackUploadedToVault", "PackUploadedToVault", "VaultTransferCompleted", "Expired",
        ]);
        var sequences = steps.Select(s => s.GetProperty("sequence").GetInt64()).ToList();
        sequences.ShouldBe(sequences.Order().Distinct().ToList());
        custody.GetProperty("auditChainedThrough").GetInt64().ShouldBeGreaterThanOrEqualTo(sequences[^1]);

        // Who did each step.
        string Actor(int i) => steps[i].GetProperty("actor").GetString()!;
        Actor(0).ShouldBe("user:bootstrap-admin");
        Actor(1).ShouldBe($"agent:{backup.Agent.AgentId}");
        Actor(2).ShouldBe($"agent:{backup.Agent.AgentId}");
        Actor(5).ShouldBe($"agent:{backup.Agent.AgentId}");
        Actor(6).ShouldBe("user:bootstrap-admin");
        Actor(7).ShouldBe("worker:vault-copy");
        Actor(12).ShouldBe("worker:retention");
        steps[0].GetProperty("eventType").GetString().ShouldBe("backup_requested.v1");
        steps[1].GetProperty("agentId").GetGuid().ShouldBe(backup.Agent.AgentId);

        // The packs written to disk are exactly the packs the agent uploaded, in upload order, with their sizes.
        var written = steps.Where(s => s.GetProperty("step").GetString() == "PackWrittenToDisk").ToList();
        written.Select(s => s.GetProperty("packId").GetString()).ShouldBe(backup.Packs.Select(p => p.Id));
        written.Select(s => s.GetProperty("bytes").GetInt64()).ShouldBe(backup.Packs.Select(p => (long)p.Bytes.Length));
        var uploaded = steps.Where(s => s.GetProperty("step").GetString() == "PackUploadedToVault").Select(s => s.GetProperty("packId").GetString());
        uploaded.ShouldBe(backup.Packs.Select(p => p.Id), ignoreOrder: true);

        var created = steps[5];
        created.GetProperty("packs").GetInt32().ShouldBe(3);
        created.GetProperty("bytesRead").GetInt64().ShouldBe(12000);
        created.GetProperty("files").GetInt32().ShouldBe(3);
        var check = steps[6];
        check.GetProperty("tier").GetString().ShouldBe("Disk");
        check.GetProperty("outcome").GetString().ShouldBe("Sound");
        check.GetProperty("damaged").GetArrayLength().ShouldBe(0);
        steps[11].GetProperty("bytes").GetInt64().ShouldBe(backup.PackBytes);
        steps[12].GetProperty("tier").GetString().ShouldBe("Disk");
        steps[12].GetProperty("reason").GetString().ShouldBe("older than the 2 days kept on disk");

        // Each step's hash is the audit chain's link for that very event.
        await using var query = api.Store.QuerySession();
        foreach (var step in steps)
        {
            var link = await query.LoadAsync<AuditLink>(step.GetProperty("sequence").GetInt64(), Ct);
            link.ShouldNotBeNull();
            link.StreamId.ShouldBe(step.GetProperty("streamId").GetGuid());
            step.GetProperty("auditHash").GetString().ShouldBe(link.Hash);
        }
    }

    [Fact]
    public async Task A_damaged_copy_names_its_damaged_packs_and_a_failed_vault_copy_its_reason()
    {
        var backup = await _client.CreatedBackupAsync();
        var damaged = backup.Packs[0].Id;
        File.Delete(Path.Combine(api.DiskStore, "packs", damaged[..2], damaged));
        (await _client.Http.PostAsync($"/api/recovery-points/{backup.RecoveryPointId}/check", null, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        // The copy cannot read the pack that is gone from disk: the transfer fails, and the chain records it.
        await Should.ThrowAsync<Exception>(() => api.CopyToVaultAsync(backup.RecoveryPointId));

        var steps = Steps(await _client.GetJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}/custody"));
        var check = steps.Single(s => s.GetProperty("step").GetString() == "Checked");
        check.GetProperty("outcome").GetString().ShouldBe("Damaged");
        check.GetProperty("damaged").EnumerateArray().Select(d => (d.GetProperty("packId").GetString(), d.GetProperty("problem").GetString()))
            .ShouldBe([(damaged, "missing")]);
        var names = steps.Select(s => s.GetProperty("step").GetString()).ToList();
        names.ShouldContain("VaultTransferStarted");
        names.ShouldNotContain("VaultTransferCompleted");
        names[^1].ShouldBe("VaultTransferFailed");
        steps[^1].GetProperty("reason").GetString().ShouldNotBeNullOrWhiteSpace();
        steps.Where(s => s.GetProperty("step").GetString() == "PackUploadedToVault").Select(s => s.GetProperty("packId").GetString()).ShouldNotContain(damaged);
    }

    [Fact]
    public async Task A_scheduled_backup_starts_its_chain_as_scheduled()
    {
        var id = Guid.CreateVersion7();
        await using (var session = api.Store.LightweightSession())
        {
            session.SetHeader(CommandMetadata.ActorHeader, "scheduler");
            session.Events.StartStream<RecoveryPoint>(id,
                new BackupRequested(id, Guid.CreateVersion7(), Guid.CreateVersion7(), Guid.CreateVersion7(), "/srv", "scheduler", DateTimeOffset.UtcNow));
            await session.SaveChangesAsync(Ct);
        }
        var step = Steps(await _client.GetJsonAsync($"/api/recovery-points/{id}/custody")).Single();
        step.GetProperty("step").GetString().ShouldBe("Scheduled");
        step.GetProperty("actor").GetString().ShouldBe("scheduler");
    }

    [Fact]
    public async Task Unknown_ids_and_ids_of_other_things_are_a_404_problem()
    {
        await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync($"/api/recovery-points/{Guid.NewGuid()}/custody", Ct), HttpStatusCode.NotFound);
        var backup = await _client.CreatedBackupAsync();
        var restore = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{backup.RecoveryPointId}/restores", new { source = "Disk", targetPath = "/alt" }, Ct);
        var restoreId = await ApiClient.IdAsync(restore);
        await api.ShouldBeRejectedAsync(() => _client.Http.GetAsync($"/api/recovery-points/{restoreId}/custody", Ct), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_auditor_reads_the_chain_and_an_agent_and_an_operator_cannot()
    {
        var backup = await _client.CreatedBackupAsync();
        var url = $"/api/recovery-points/{backup.RecoveryPointId}/custody";
        var auditor = await api.CreateClientAsync("auditor");
        var response = await auditor.GetAsync(url, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("recoveryPointId").GetGuid().ShouldBe(backup.RecoveryPointId);

        (await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Get, url, backup.Agent.Credential), Ct)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        (await (await api.CreateClientAsync("operator")).GetAsync(url, Ct)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);
    }
}
