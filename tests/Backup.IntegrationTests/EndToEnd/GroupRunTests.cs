using System.Net;
using System.Net.Http.Json;
using System.Runtime.Versioning;
using System.Text.Json;
using Backup.Commands.GroupRuns;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// A protection group backed up at one instant (issue 20, group runs): real agent processes take their members together, the
/// workers record each member's start and end and the run's completion in the run's stream, and an agent that is off makes
/// the run complete with failures, naming that member, instead of leaving it open.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class GroupRunTests : IAsyncLifetime
{
    private readonly ProductRun _run = new("grouprun");
    private ProductProcess _workers = null!;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync();
        // A job its agent has not claimed within 20 s fails: long enough for a running agent on a busy machine, short for the test.
        _workers = _run.StartWorkers(new Dictionary<string, string>
        {
            ["Backup__JobLeases__PickupTimeout"] = "00:00:20",
            ["Backup__JobLeases__ReaperInterval"] = "00:00:01",
        });
    }

    [Fact]
    public async Task Every_member_is_requested_at_one_instant_and_an_agent_that_is_off_completes_the_run_with_failures_naming_it()
    {
        var client = _run.Client;
        var web = await StartedAgentAsync("web-tier");
        var db = await StartedAgentAsync("db-tier");
        var off = (await client.EnrolAsync("powered-off")).AgentId; // enrolled, then never polls
        var group = await client.CreateGroupAsync("Tiered app");
        var members = new Dictionary<Guid, string>
        {
            [await client.AddFolderAsync(group, web.Id, web.Folder)] = "web",
            [await client.AddFolderAsync(group, db.Id, db.Folder)] = "db",
            [await client.AddFolderAsync(group, off, "/srv/never-read")] = "off",
        };

        var response = await client.Http.PostAsync($"/api/protection-groups/{group}/backups", null, Ct);

        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var requested = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var runId = requested.GetProperty("id").GetGuid();
        response.Headers.Location!.ToString().ShouldBe($"/api/group-runs/{runId}");
        var pointOf = requested.GetProperty("members").EnumerateArray()
            .ToDictionary(m => members[m.GetProperty("dataSourceId").GetGuid()], m => m.GetProperty("recoveryPointId").GetGuid());
        pointOf.Keys.Order().ShouldBe(["db", "off", "web"]);

        JsonElement run;
        try
        {
            run = await client.WaitForAsync($"/api/group-runs/{runId}",
                r => r.GetProperty("status").GetString() is "Completed" or "CompletedWithFailures", TimeSpan.FromSeconds(120));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException($"{e.Message}\nworkers:\n{_workers.Output}\nweb:\n{web.Process.Output}\ndb:\n{db.Process.Output}", e);
        }

        run.GetProperty("status").GetString().ShouldBe("CompletedWithFailures", run.ToString() + "\n" + web.Process.Output + db.Process.Output);
        run.GetProperty("succeeded").GetInt32().ShouldBe(2);
        run.GetProperty("failed").GetInt32().ShouldBe(1);
        var byPoint = run.GetProperty("members").EnumerateArray().ToDictionary(m => m.GetProperty("recoveryPointId").GetGuid());
        foreach (var tier in new[] { "web", "db" })
        {
            var member = byPoint[pointOf[tier]];
            member.GetProperty("status").GetString().ShouldBe("Succeeded", tier);
            member.GetProperty("startedAt").ValueKind.ShouldBe(JsonValueKind.String, tier);
        }
        var offline = byPoint[pointOf["off"]];
        offline.GetProperty("status").GetString().ShouldBe("Failed");
        offline.GetProperty("failureReason").GetString()!.ShouldContain("did not pick the job up");
        run.GetProperty("spreadSeconds").GetDouble().ShouldBeGreaterThanOrEqualTo(0);

        // Every member's recovery point carries the run and the one instant it was requested at.
        var requestedAt = run.GetProperty("requestedAt").GetDateTimeOffset();
        foreach (var (tier, point) in pointOf)
        {
            var rp = await client.WaitForAsync($"/api/recovery-points/{point}",
                p => p.GetProperty("groupRunId").ValueKind == JsonValueKind.String && p.GetProperty("status").GetString() is "Created" or "Failed");
            rp.GetProperty("groupRunId").GetGuid().ShouldBe(runId, tier);
            rp.GetProperty("requestedAt").GetDateTimeOffset().ShouldBe(requestedAt, tier);
            rp.GetProperty("status").GetString().ShouldBe(tier == "off" ? "Failed" : "Created", tier);
        }

        // The run's own stream tells it: requested, the two members that started, three ends, completed.
        var events = await _run.EventsAsync(runId);
        events.OfType<GroupRunRequested>().ShouldHaveSingleItem();
        events.OfType<GroupRunMemberStarted>().Select(e => e.RecoveryPointId).Order().ShouldBe(new[] { pointOf["web"], pointOf["db"] }.Order());
        events.OfType<GroupRunMemberEnded>().Count().ShouldBe(3);
        events[^1].ShouldBeOfType<GroupRunCompleted>().Failed.ShouldBe(1);

        var runs = await client.GetJsonAsync($"/api/protection-groups/{group}/runs");
        runs.EnumerateArray().Select(r => r.GetProperty("id").GetGuid()).ShouldBe([runId]);
    }

    private async Task<(Guid Id, string Folder, ProductProcess Process)> StartedAgentAsync(string machine)
    {
        var folder = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, machine)).FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "data.txt"), $"what {machine} holds\n", Ct);
        var agent = _run.StartAgent(machine, Path.Combine(_run.Work.FullName, $"{machine}-state"), await _run.Client.IssueTokenAsync());
        return (await _run.WaitForAgentAsync(machine, agent), folder, agent);
    }

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}
