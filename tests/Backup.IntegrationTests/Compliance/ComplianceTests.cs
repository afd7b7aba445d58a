using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections.Compliance;
using Backup.Storage.Contracts;
using Backup.Storage.Format;
using Marten;
using Marten.Events;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Backup.IntegrationTests.Compliance;

/// <summary>
/// The compliance view on real PostgreSQL, through the API and its daemon: live, as of past instants, per group and overall.
/// The API runs on a manual clock, so hours pass in a line of code and every event's time is the clock's. Other tests of the
/// fixture add data sources, so each test filters by its own group or data source.
/// </summary>
public sealed class ComplianceTests : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private readonly ApiFactory _factory;
    private readonly WebApplicationFactory<Program> _api;
    private readonly ApiClient _client;
    private readonly ManualClock _clock = new(DateTimeOffset.UtcNow);

    /// <summary>A recovery point every hour, kept two days (48 on disk), synchronised hourly, in UTC.</summary>
    private static readonly object Hourly = new
    {
        retentionDays = 2, synchronisation = "Interval", syncIntervalMinutes = 60,
        recoveryPointTimes = Enumerable.Range(0, 24).Select(h => $"{h:00}:00").ToArray(),
        recoveryPointDays = Enum.GetNames<DayOfWeek>(), timeZone = "UTC",
    };

    /// <summary>One recovery point a day at 00:00 UTC.</summary>
    private static readonly object Daily = new
    {
        retentionDays = 7, synchronisation = "JustBeforeRecoveryPoint", syncIntervalMinutes = (int?)null,
        recoveryPointTimes = new[] { "00:00" }, recoveryPointDays = Enum.GetNames<DayOfWeek>(), timeZone = "UTC",
    };

    public ComplianceTests(ApiFactory factory)
    {
        _factory = factory;
        _api = factory.WithHost(b => b.ConfigureServices(s => s.AddSingleton<TimeProvider>(_clock)));
        _client = new ApiClient(_api.CreateClient());
    }

    public async ValueTask DisposeAsync() => await _api.DisposeAsync();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDocumentStore Store => _api.Services.GetRequiredService<IDocumentStore>();

    private async Task SetShortTermPolicyAsync(Guid group, object policy)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{group}/short-term-policy") { Content = JsonContent.Create(policy) };
        request.Headers.TryAddWithoutValidation("If-Match", "*");
        var response = await _client.Http.SendAsync(request, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
    }

    private async Task<(Guid Group, EnrolAgentResponse Agent)> GroupAsync(object? policy = null)
    {
        var agent = await _client.EnrolAsync($"machine-{Guid.NewGuid():N}");
        var group = await _client.CreateGroupAsync($"compliance-{Guid.NewGuid():N}");
        await SetShortTermPolicyAsync(group, policy ?? Hourly);
        return (group, agent);
    }

    private Task<Guid> AddSourceAsync(Guid group, EnrolAgentResponse agent) => _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");

    /// <summary>
    /// A recovery point created now (or stamped <paramref name="createdAt"/>), as the API records one (and its copy in the vault, as
    /// the workers record it, when asked).
    /// </summary>
    private async Task<Guid> RecoveryPointAsync(Guid group, Guid source, EnrolAgentResponse agent, bool copiedToVault = false, DateTimeOffset? createdAt = null)
    {
        var id = Guid.CreateVersion7();
        var now = createdAt ?? _clock.GetUtcNow();
        await using var session = Store.LightweightSession();
        session.Events.StartStream<RecoveryPoint>(id,
            new BackupRequested(id, source, group, agent.AgentId, "/srv", "operator", now),
            new BackupStarted(id, agent.AgentId, now),
            new RecoveryPointCreated(id, source, 1, 0, 0, 10, 10, [], new string('0', 64), now));
        if (copiedToVault)
        {
            var transfer = VaultTransfer.IdFor(id);
            session.Events.StartStream<VaultTransfer>(transfer,
                new VaultTransferStarted(transfer, id, 0, now), new VaultTransferCompleted(transfer, id, 0, 0, now));
        }
        await session.SaveChangesAsync(Ct);
        return id;
    }

    private async Task AppendAsync(Guid stream, object @event)
    {
        await using var session = Store.LightweightSession();
        session.Events.Append(stream, @event);
        await session.SaveChangesAsync(Ct);
    }

    private Task<JsonElement> ComplianceAsync(string query) => _client.GetJsonAsync("/api/compliance" + query);

    /// <summary>Polls the live report (the projection runs in the daemon) until <paramref name="done"/> holds.</summary>
    private Task<JsonElement> WaitForAsync(string query, Func<JsonElement, bool> done) => _client.WaitForAsync("/api/compliance" + query, done);

    private static JsonElement Source(JsonElement report, Guid dataSource) =>
        report.GetProperty("dataSources").EnumerateArray().Single(s => s.GetProperty("dataSourceId").GetGuid() == dataSource);

    private static bool Lists(JsonElement report, Guid dataSource, Func<JsonElement, bool>? also = null) =>
        report.GetProperty("dataSources").EnumerateArray().Any(s => s.GetProperty("dataSourceId").GetGuid() == dataSource && (also?.Invoke(s) ?? true));

    private static string[] Reasons(JsonElement source) => [.. source.GetProperty("reasons").EnumerateArray().Select(r => r.GetString()!)];

    [Fact]
    public async Task A_data_source_with_a_fresh_recovery_point_taken_over_the_agent_protocol_is_compliant()
    {
        var (group, agent) = await GroupAsync();
        var source = await AddSourceAsync(group, agent);
        _clock.Advance(TimeSpan.FromMinutes(5));

        // The agent's side, as AgentProtocolTests drives it: claim the job, upload a pack, commit.
        var rp = await _client.RequestBackupAsync(source);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var data = TestPacks.Build(RandomNumberGenerator.GetBytes(2000));
        var tree = TestPacks.Build("{\"pretend\":\"tree\"}"u8.ToArray());
        foreach (var pack in new[] { data, tree })
        {
            var upload = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Put,
                $"/api/agents/{agent.AgentId}/recovery-points/{rp}/packs/{pack.Id}", agent.Credential, new ByteArrayContent(pack.Bytes)), Ct);
            upload.StatusCode.ShouldBe(HttpStatusCode.OK, await upload.Content.ReadAsStringAsync(Ct));
        }
        var commit = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/complete",
            agent.Credential, JsonContent.Create(new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64(data.Chunks), 1, 1, 2000), options: Manifest.Json)), Ct);
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));

        var report = await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("rpo").GetProperty("lastRecoveryPointAt").ValueKind != JsonValueKind.Null));
        var entry = Source(report, source);
        entry.GetProperty("compliant").GetBoolean().ShouldBeTrue(entry.ToString());
        Reasons(entry).ShouldBeEmpty();
        entry.GetProperty("rpo").GetProperty("met").GetBoolean().ShouldBeTrue();
        entry.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32().ShouldBe(1);
        entry.GetProperty("retention").GetProperty("keptByPolicy").GetInt32().ShouldBe(48);
        report.GetProperty("overall").GetProperty("percentCompliant").GetDouble().ShouldBe(100);
    }

    [Fact]
    public async Task No_recovery_point_for_longer_than_the_schedule_allows_is_not_compliant_and_says_why()
    {
        var (group, agent) = await GroupAsync();
        var source = await AddSourceAsync(group, agent);
        await RecoveryPointAsync(group, source, agent, copiedToVault: true);
        // Compliant already before the point is projected (nothing was due yet): wait for the point itself.
        await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("compliant").GetBoolean()
            && s.GetProperty("rpo").TryGetProperty("lastRecoveryPointAt", out var last) && last.ValueKind == System.Text.Json.JsonValueKind.String));

        _clock.Advance(TimeSpan.FromHours(3));

        var entry = Source(await ComplianceAsync($"?dataSourceId={source}"), source);
        entry.GetProperty("compliant").GetBoolean().ShouldBeFalse();
        entry.GetProperty("rpo").GetProperty("met").GetBoolean().ShouldBeFalse();
        entry.GetProperty("rpo").GetProperty("lastRecoveryPointAgeMinutes").GetDouble().ShouldBe(180, 0.1);
        var reason = Reasons(entry).ShouldHaveSingleItem();
        reason.ShouldContain("last recovery point 3h 0m old");
        reason.ShouldContain("policy syncs every 60 min");
    }

    [Fact]
    public async Task A_data_source_that_never_got_a_recovery_point_is_not_compliant_once_one_was_due()
    {
        var (group, agent) = await GroupAsync(Daily);
        var source = await AddSourceAsync(group, agent);
        (await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source))).GetProperty("overall").GetProperty("compliant").GetInt32()
            .ShouldBe(1, "nothing is due before the first scheduled time after protection");

        _clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromHours(1));

        var reason = Reasons(Source(await ComplianceAsync($"?dataSourceId={source}"), source)).ShouldHaveSingleItem();
        reason.ShouldStartWith("no recovery point yet;");
        reason.ShouldContain("policy syncs just before each recovery point and takes recovery points at 00:00 (UTC) every day");
    }

    [Fact]
    public async Task The_online_copy_lags_until_the_vault_holds_the_point_the_online_backup_should_have_copied()
    {
        var (group, agent) = await GroupAsync();
        var onlineAt = _clock.GetUtcNow().AddMinutes(30);
        var request = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{group}/online-policy")
        {
            Content = JsonContent.Create(new { backupTimes = new[] { onlineAt.ToString("HH:mm", System.Globalization.CultureInfo.InvariantCulture) }, schedule = "Daily", dailyRetentionDays = 7 }),
        };
        request.Headers.TryAddWithoutValidation("If-Match", "*");
        (await _client.Http.SendAsync(request, Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var source = await AddSourceAsync(group, agent);
        var first = await RecoveryPointAsync(group, source, agent);
        _clock.Advance(TimeSpan.FromHours(3));
        await RecoveryPointAsync(group, source, agent);

        var lagging = Source(await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 2)), source);
        lagging.GetProperty("online").GetProperty("met").GetBoolean().ShouldBeFalse();
        lagging.GetProperty("online").GetProperty("onlinePolicySet").GetBoolean().ShouldBeTrue();
        Reasons(lagging).ShouldHaveSingleItem().ShouldStartWith("no recovery point has been copied to the vault; the online backup due at");

        // The workers' copy of the point that existed at the online time.
        var transfer = VaultTransfer.IdFor(first);
        await using (var session = Store.LightweightSession())
        {
            session.Events.StartStream<VaultTransfer>(transfer,
                new VaultTransferStarted(transfer, first, 0, _clock.GetUtcNow()), new VaultTransferCompleted(transfer, first, 0, 0, _clock.GetUtcNow()));
            await session.SaveChangesAsync(Ct);
        }
        var copied = Source(await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("online").GetProperty("met").GetBoolean())), source);
        copied.GetProperty("compliant").GetBoolean().ShouldBeTrue(copied.ToString());
        copied.GetProperty("online").GetProperty("lagMinutes").GetDouble().ShouldBe(180, 0.1);
    }

    [Fact]
    public async Task A_point_expired_from_disk_is_no_longer_counted_as_held()
    {
        var (group, agent) = await GroupAsync();
        var source = await AddSourceAsync(group, agent);
        var old = await RecoveryPointAsync(group, source, agent, copiedToVault: true);
        _clock.Advance(TimeSpan.FromMinutes(10));
        await RecoveryPointAsync(group, source, agent, copiedToVault: true);
        await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 2));

        await AppendAsync(old, new RecoveryPointExpired(old, StorageTier.Disk, "retention", _clock.GetUtcNow()));

        var entry = Source(await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 1)), source);
        entry.GetProperty("retention").GetProperty("oldestOnDiskAt").GetDateTimeOffset().ShouldBe(_clock.GetUtcNow(), TimeSpan.FromMilliseconds(1));
        entry.GetProperty("compliant").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task The_live_report_leaves_out_what_is_stamped_later_than_now()
    {
        var (group, agent) = await GroupAsync();
        var source = await AddSourceAsync(group, agent);
        await RecoveryPointAsync(group, source, agent);
        await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 1));

        // A point whose creation is stamped an hour ahead of the server's clock (an agent's clock ahead, say).
        var ahead = _clock.GetUtcNow().AddHours(1);
        var id = await RecoveryPointAsync(group, source, agent, createdAt: ahead);
        // Once the projection has it, the live report still says what held now: one point, the later one not there yet.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            await using var query = Store.QuerySession();
            if ((await query.LoadAsync<ComplianceSource>(source, Ct))?.Facts.LastRecoveryPointId == id) break;
            DateTime.UtcNow.ShouldBeLessThan(deadline, "the compliance projection never applied the point");
            await Task.Delay(100, Ct);
        }
        var live = Source(await ComplianceAsync($"?dataSourceId={source}"), source);
        live.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32().ShouldBe(1);
        live.GetProperty("rpo").GetProperty("lastRecoveryPointAt").GetDateTimeOffset().ShouldBeLessThan(ahead);

        _clock.Advance(TimeSpan.FromHours(1));
        var then = Source(await ComplianceAsync($"?dataSourceId={source}"), source);
        then.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32().ShouldBe(2);
        then.GetProperty("rpo").GetProperty("lastRecoveryPointAt").GetDateTimeOffset().ShouldBe(ahead, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task An_as_of_report_asked_again_includes_an_event_for_that_instant_projected_in_between()
    {
        var (group, agent) = await GroupAsync();
        var source = await AddSourceAsync(group, agent);
        await RecoveryPointAsync(group, source, agent);
        await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 1));
        _clock.Advance(TimeSpan.FromMinutes(10));
        var asOf = Uri.EscapeDataString(_clock.GetUtcNow().ToString("O"));
        var first = Source(await ComplianceAsync($"?dataSourceId={source}&asOf={asOf}"), source);
        first.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32().ShouldBe(1);
        Source(await ComplianceAsync($"?dataSourceId={source}&asOf={asOf}"), source).GetRawText().ShouldBe(first.GetRawText(), "asked again, the same answer");

        // A point created five minutes before that instant, recorded only now (a commit that took its time, say).
        var created = _clock.GetUtcNow().AddMinutes(-5);
        await RecoveryPointAsync(group, source, agent, createdAt: created);
        var again = Source(await WaitForAsync($"?dataSourceId={source}&asOf={asOf}",
            r => Lists(r, source, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 2)), source);
        again.GetProperty("rpo").GetProperty("lastRecoveryPointAt").GetDateTimeOffset().ShouldBe(created, TimeSpan.FromMilliseconds(1));
    }

    [Fact]
    public async Task As_of_one_instant_a_groups_report_and_the_whole_report_each_count_their_own_data_sources()
    {
        // The evaluation of an instant is kept for the next request; it must be the one of the data sources asked for.
        var (group, agent) = await GroupAsync();
        var first = await AddSourceAsync(group, agent);
        var (other, otherAgent) = await GroupAsync();
        var second = await AddSourceAsync(other, otherAgent);
        await WaitForAsync($"?dataSourceId={first}", r => Lists(r, first));
        await WaitForAsync($"?dataSourceId={second}", r => Lists(r, second));
        _clock.Advance(TimeSpan.FromMinutes(1));
        var asOf = Uri.EscapeDataString(_clock.GetUtcNow().ToString("O"));

        var ofGroup = await ComplianceAsync($"?groupId={group}&asOf={asOf}");
        ofGroup.GetProperty("overall").GetProperty("dataSources").GetInt32().ShouldBe(1);
        var all = await ComplianceAsync($"?asOf={asOf}&limit=1000");
        all.GetProperty("overall").GetProperty("dataSources").GetInt32().ShouldBeGreaterThanOrEqualTo(2);
        all.GetProperty("dataSources").EnumerateArray().Select(s => s.GetProperty("dataSourceId").GetGuid()).ShouldContain(second);
        var ofOther = await ComplianceAsync($"?groupId={other}&asOf={asOf}");
        ofOther.GetProperty("dataSources").EnumerateArray().Select(s => s.GetProperty("dataSourceId").GetGuid()).ShouldBe([second]);
    }

    [Fact]
    public async Task Compliance_now_is_evaluated_again_after_a_second_or_at_once_when_a_fact_changes()
    {
        var (group, agent) = await GroupAsync();
        var source = await AddSourceAsync(group, agent);
        await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source));
        static DateTimeOffset AsOf(JsonElement report) => report.GetProperty("asOf").GetDateTimeOffset();

        var first = await ComplianceAsync($"?dataSourceId={source}");
        AsOf(first).ShouldBe(_clock.GetUtcNow());
        _clock.Advance(TimeSpan.FromMilliseconds(500));
        AsOf(await ComplianceAsync($"?dataSourceId={source}")).ShouldBe(AsOf(first), "within a second and nothing changed: the same evaluation");
        _clock.Advance(TimeSpan.FromMilliseconds(600));
        AsOf(await ComplianceAsync($"?dataSourceId={source}")).ShouldBe(_clock.GetUtcNow(), "a second later: evaluated again");

        _clock.Advance(TimeSpan.FromMilliseconds(100));
        await RecoveryPointAsync(group, source, agent);
        var changed = await WaitForAsync($"?dataSourceId={source}", r => Lists(r, source, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 1));
        AsOf(changed).ShouldBe(_clock.GetUtcNow(), "a new fact is evaluated at once, at the instant asked");
    }

    [Fact]
    public async Task As_of_a_past_instant_equals_the_live_report_captured_then_after_later_events_changed_it()
    {
        var (group, agent) = await GroupAsync();
        var fresh = await AddSourceAsync(group, agent);
        var idle = await AddSourceAsync(group, agent);
        var point = await RecoveryPointAsync(group, fresh, agent, copiedToVault: true);
        _clock.Advance(TimeSpan.FromHours(2));
        await RecoveryPointAsync(group, fresh, agent, copiedToVault: true);
        var live = await WaitForAsync($"?groupId={group}", r => Lists(r, fresh, s => s.GetProperty("retention").GetProperty("recoveryPointsOnDisk").GetInt32() == 2) && Lists(r, idle));
        var capturedAt = live.GetProperty("asOf").GetString()!;
        live.GetProperty("overall").GetProperty("percentCompliant").GetDouble().ShouldBe(50, live.ToString());

        // Later: a new backup of the idle source, a failed one of the fresh source, a damaged copy found by a check, a new
        // policy, and hours passing.
        _clock.Advance(TimeSpan.FromMinutes(1));
        await RecoveryPointAsync(group, idle, agent, copiedToVault: true);
        var failed = Guid.CreateVersion7();
        await using (var session = Store.LightweightSession())
        {
            session.Events.StartStream<RecoveryPoint>(failed,
                new BackupRequested(failed, fresh, group, agent.AgentId, "/srv", "scheduler", _clock.GetUtcNow()),
                new BackupStarted(failed, agent.AgentId, _clock.GetUtcNow()),
                new RecoveryPointFailed(failed, "agent lost: lease expired 3 times", _clock.GetUtcNow()));
            await session.SaveChangesAsync(Ct);
        }
        await AppendAsync(point, new RecoveryPointChecked(point, StorageTier.Disk, 1, 10, [new DamagedPack(new string('a', 64), "missing")], "operator", _clock.GetUtcNow()));
        await SetShortTermPolicyAsync(group, Daily);
        _clock.Advance(TimeSpan.FromHours(5));
        var now = await WaitForAsync($"?groupId={group}", r => Lists(r, fresh, s => !s.GetProperty("consistency").GetProperty("consistent").GetBoolean()));
        now.GetRawText().ShouldNotBe(live.GetRawText());

        var asOf = await ComplianceAsync($"?groupId={group}&asOf={Uri.EscapeDataString(capturedAt)}");
        asOf.GetRawText().ShouldBe(live.GetRawText());
    }

    [Fact]
    public async Task As_of_before_a_data_source_was_protected_does_not_list_it()
    {
        var (group, agent) = await GroupAsync();
        var before = _clock.GetUtcNow();
        _clock.Advance(TimeSpan.FromMinutes(1));
        var source = await AddSourceAsync(group, agent);
        await WaitForAsync($"?groupId={group}", r => Lists(r, source));

        var report = await ComplianceAsync($"?groupId={group}&asOf={Uri.EscapeDataString(before.ToString("O"))}");
        report.GetProperty("dataSources").GetArrayLength().ShouldBe(0);
        report.GetProperty("groups").GetArrayLength().ShouldBe(0);
        report.GetProperty("overall").GetProperty("dataSources").GetInt32().ShouldBe(0);
        (await ComplianceAsync($"?dataSourceId={source}&asOf={Uri.EscapeDataString(before.ToString("O"))}"))
            .GetProperty("dataSources").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task Groups_and_the_whole_server_report_the_share_of_compliant_data_sources()
    {
        var (group, agent) = await GroupAsync();
        var sources = new List<Guid>();
        for (var i = 0; i < 4; i++) sources.Add(await AddSourceAsync(group, agent));
        _clock.Advance(TimeSpan.FromHours(3));
        foreach (var source in sources.Take(3)) await RecoveryPointAsync(group, source, agent, copiedToVault: true);

        var report = await WaitForAsync($"?groupId={group}", r => sources.Take(3).All(s => Lists(r, s, e => e.GetProperty("compliant").GetBoolean())) && Lists(r, sources[3]));
        var entry = report.GetProperty("groups").EnumerateArray().ShouldHaveSingleItem();
        entry.GetProperty("groupId").GetGuid().ShouldBe(group);
        entry.GetProperty("dataSources").GetInt32().ShouldBe(4);
        entry.GetProperty("compliant").GetInt32().ShouldBe(3);
        entry.GetProperty("percentCompliant").GetDouble().ShouldBe(75);
        Source(report, sources[3]).GetProperty("compliant").GetBoolean().ShouldBeFalse();

        var overall = (await ComplianceAsync("")).GetProperty("overall");
        overall.GetProperty("dataSources").GetInt32().ShouldBeGreaterThanOrEqualTo(4);
        overall.GetProperty("percentCompliant").GetDouble()
            .ShouldBe(Math.Round(100.0 * overall.GetProperty("compliant").GetInt32() / overall.GetProperty("dataSources").GetInt32(), 2));
    }

    [Fact]
    public async Task The_list_of_data_sources_pages_in_group_path_order_and_filters_by_compliance_while_the_summary_counts_all()
    {
        var (group, agent) = await GroupAsync();
        var sources = new List<Guid>();
        for (var i = 0; i < 7; i++) sources.Add(await AddSourceAsync(group, agent));
        _clock.Advance(TimeSpan.FromHours(3));
        var fresh = sources.Where((_, i) => i % 2 == 0).ToList();
        foreach (var source in fresh) await RecoveryPointAsync(group, source, agent, copiedToVault: true);
        var whole = await WaitForAsync($"?groupId={group}", r => fresh.All(s => Lists(r, s, e => e.GetProperty("compliant").GetBoolean())));
        whole.GetProperty("nextAfter").ValueKind.ShouldBe(JsonValueKind.Null, "seven data sources fit the default page");
        string[] order = [.. whole.GetProperty("dataSources").EnumerateArray().Select(e => e.GetProperty("path").GetString()!)];
        order.ShouldBe(order.Order(StringComparer.Ordinal).ToArray());

        // Pages of three: every data source once, in the same order, each page's summary the whole group's.
        var paged = new List<string>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await ComplianceAsync($"?groupId={group}&limit=3" + (after is null ? "" : $"&after={after}"));
            page.GetProperty("dataSources").GetArrayLength().ShouldBeLessThanOrEqualTo(3);
            page.GetProperty("overall").GetProperty("dataSources").GetInt32().ShouldBe(7);
            page.GetProperty("overall").GetProperty("compliant").GetInt32().ShouldBe(fresh.Count);
            paged.AddRange(page.GetProperty("dataSources").EnumerateArray().Select(e => e.GetProperty("path").GetString()!));
            after = page.GetProperty("nextAfter").GetString();
            pages++;
        }
        while (after is not null);
        pages.ShouldBe(3);
        paged.ShouldBe(order);

        var failing = await ComplianceAsync($"?groupId={group}&compliant=false");
        failing.GetProperty("dataSources").EnumerateArray().Select(e => e.GetProperty("dataSourceId").GetGuid())
            .ShouldBe(sources.Except(fresh), ignoreOrder: true);
        failing.GetProperty("dataSources").EnumerateArray().ShouldAllBe(e => e.GetProperty("reasons").GetArrayLength() > 0);
        failing.GetProperty("overall").GetProperty("dataSources").GetInt32().ShouldBe(7);
        (await ComplianceAsync($"?groupId={group}&compliant=true")).GetProperty("dataSources").EnumerateArray()
            .Select(e => e.GetProperty("dataSourceId").GetGuid()).ShouldBe(fresh, ignoreOrder: true);
    }

    [Theory]
    [InlineData("?limit=0", "limit")]
    [InlineData("?limit=1001", "limit")]
    [InlineData("?after=not-a-cursor", "after")]
    [InlineData("?after=cnA6MTIzNDU", "after")] // a recovery-point list cursor
    [InlineData("?compliant=perhaps", "compliant")]
    public async Task A_bad_page_or_filter_is_a_400_naming_it(string query, string parameter)
    {
        var problem = await _factory.ShouldBeRejectedAsync(() => _client.Http.GetAsync("/api/compliance" + query, Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, parameter);
    }

    [Fact]
    public async Task A_period_report_counts_missed_recovery_points_and_the_days_a_copy_was_damaged()
    {
        var (group, agent) = await GroupAsync();
        var from = _clock.GetUtcNow();
        var source = await AddSourceAsync(group, agent);
        var firstSlot = new DateTimeOffset(from.UtcDateTime.Date.AddHours(from.UtcDateTime.Hour + 1), TimeSpan.Zero);
        _clock.Advance(firstSlot - from + TimeSpan.FromMinutes(5));
        var first = await RecoveryPointAsync(group, source, agent);           // answers firstSlot
        _clock.Advance(TimeSpan.FromHours(2));                                // firstSlot + 1h: nothing
        await RecoveryPointAsync(group, source, agent);                       // answers firstSlot + 2h
        var damagedFrom = _clock.GetUtcNow();
        await AppendAsync(first, new RecoveryPointChecked(first, StorageTier.Disk, 1, 10, [new DamagedPack(new string('b', 64), "corrupt")], "operator", damagedFrom));
        _clock.Advance(TimeSpan.FromHours(1));
        var soundAt = _clock.GetUtcNow();
        await AppendAsync(first, new RecoveryPointChecked(first, StorageTier.Disk, 1, 10, [], "operator", soundAt));
        _clock.Advance(TimeSpan.FromHours(2));                                // firstSlot + 3h, + 4h: nothing; + 5h too recent to count
        var to = _clock.GetUtcNow();
        // The report counts the damaged days from both checks: wait for the daemon to have projected them. (The live view's
        // "consistent, two points on disk" already holds before the checks are projected.)
        await _factory.WaitForProjectionAsync(ComplianceProjection.Name);

        var report = await _client.GetJsonAsync($"/api/compliance/period?groupId={group}&from={Uri.EscapeDataString(from.ToString("O"))}&to={Uri.EscapeDataString(to.ToString("O"))}");
        var entry = report.GetProperty("dataSources").EnumerateArray().ShouldHaveSingleItem();
        entry.GetProperty("dataSourceId").GetGuid().ShouldBe(source);
        entry.GetProperty("expectedRecoveryPoints").GetInt32().ShouldBe(5);
        entry.GetProperty("recoveryPointsCreated").GetInt32().ShouldBe(2);
        entry.GetProperty("missedRecoveryPoints").GetInt32().ShouldBe(3);
        entry.GetProperty("missed").EnumerateArray().Select(m => m.GetDateTimeOffset()).ShouldBe([firstSlot.AddHours(1), firstSlot.AddHours(3), firstSlot.AddHours(4)]);
        var damagedDates = new[] { DateOnly.FromDateTime(damagedFrom.UtcDateTime), DateOnly.FromDateTime(soundAt.UtcDateTime.AddTicks(-1)) }.Distinct();
        entry.GetProperty("inconsistentDays").GetInt32().ShouldBe(damagedDates.Count());
        entry.GetProperty("inconsistentDates").EnumerateArray().Select(d => DateOnly.Parse(d.GetString()!, System.Globalization.CultureInfo.InvariantCulture)).ShouldBe(damagedDates);
        report.GetProperty("overall").GetProperty("missedRecoveryPoints").GetInt32().ShouldBe(3);

        var before = await _client.GetJsonAsync($"/api/compliance/period?groupId={group}&from={Uri.EscapeDataString(from.AddDays(-1).ToString("O"))}&to={Uri.EscapeDataString(from.ToString("O"))}");
        before.GetProperty("dataSources").GetArrayLength().ShouldBe(0, "the data source was protected after that period");
    }

    [Theory]
    [InlineData("", "from")]
    [InlineData("?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "to")]
    [InlineData("?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to")]
    [InlineData("?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to")]
    [InlineData("?from=last-week", "from")]
    public async Task A_period_without_a_start_inverted_too_long_or_unparseable_is_a_400_naming_the_parameter(string query, string parameter)
    {
        var problem = await _factory.ShouldBeRejectedAsync(() => _client.Http.GetAsync("/api/compliance/period" + query, Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, parameter);
    }

    [Fact]
    public async Task A_period_ending_in_the_future_is_a_400_naming_to()
    {
        var to = _clock.GetUtcNow().AddHours(1).ToString("O");
        var problem = await _factory.ShouldBeRejectedAsync(
            () => _client.Http.GetAsync($"/api/compliance/period?from=2026-01-01T00:00:00Z&to={Uri.EscapeDataString(to)}", Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "to");
    }

    [Theory]
    [InlineData("?asOf=yesterday", "asOf")]
    [InlineData("?asOf=2026-13-45T00:00:00Z", "asOf")]
    [InlineData("?groupId=not-a-guid", "groupId")]
    [InlineData("?dataSourceId=42", "dataSourceId")]
    public async Task Unparseable_parameters_are_a_400_naming_them(string query, string parameter)
    {
        var problem = await _factory.ShouldBeRejectedAsync(() => _client.Http.GetAsync("/api/compliance" + query, Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, parameter);
    }

    [Fact]
    public async Task An_as_of_in_the_future_is_a_400_naming_it()
    {
        var future = _clock.GetUtcNow().AddMinutes(1).ToString("O");
        var problem = await _factory.ShouldBeRejectedAsync(
            () => _client.Http.GetAsync($"/api/compliance?asOf={Uri.EscapeDataString(future)}", Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "asOf");
    }

    [Fact]
    public async Task An_auditor_finds_which_data_sources_were_out_of_compliance_on_a_past_date_and_why_and_an_agent_may_not()
    {
        var (group, agent) = await GroupAsync();
        var kept = await AddSourceAsync(group, agent);
        var missed = await AddSourceAsync(group, agent);
        _clock.Advance(TimeSpan.FromHours(3));
        await RecoveryPointAsync(group, kept, agent, copiedToVault: true);
        await WaitForAsync($"?groupId={group}", r => Lists(r, kept, s => s.GetProperty("compliant").GetBoolean()
            && s.GetProperty("rpo").TryGetProperty("lastRecoveryPointAt", out var last) && last.ValueKind == JsonValueKind.String));
        var pastDate = _clock.GetUtcNow();

        // Afterwards the missed data source is backed up, so it is compliant now; the past date still says otherwise.
        _clock.Advance(TimeSpan.FromMinutes(30));
        await RecoveryPointAsync(group, missed, agent, copiedToVault: true);
        await WaitForAsync($"?groupId={group}", r => Lists(r, missed, s => s.GetProperty("compliant").GetBoolean()));

        var auditor = await ClientAsync("auditor");
        var response = await auditor.GetAsync($"/api/compliance?groupId={group}&compliant=false&asOf={Uri.EscapeDataString(pastDate.ToString("O"))}", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        var report = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var outOfCompliance = report.GetProperty("dataSources").EnumerateArray().ShouldHaveSingleItem();
        outOfCompliance.GetProperty("dataSourceId").GetGuid().ShouldBe(missed);
        Reasons(outOfCompliance).ShouldHaveSingleItem().ShouldContain("no recovery point yet");
        report.GetProperty("overall").GetProperty("percentCompliant").GetDouble().ShouldBe(50);
        // Nothing to change for an auditor: a backup request is refused.
        (await auditor.PostAsync($"/api/data-sources/{missed}/backups", null, Ct)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);

        var asAgent = _api.CreateClient();
        asAgent.DefaultRequestHeaders.Authorization = new("Agent", agent.Credential);
        var refused = await asAgent.GetAsync($"/api/compliance?groupId={group}", Ct);
        refused.StatusCode.ShouldBe(HttpStatusCode.Forbidden);
        refused.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
    }

    private async Task<HttpClient> ClientAsync(string role)
    {
        var response = await _client.Http.PostAsJsonAsync("/api/access/keys", new { name = $"{role}-{Guid.NewGuid():N}", role }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        var key = (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("key").GetString()!;
        var client = _api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("ApiKey", key);
        return client;
    }
    [Fact]
    public async Task A_data_source_removed_from_protection_leaves_the_report_from_then_on_but_stays_in_it_as_of_before()
    {
        var (group, agent) = await GroupAsync();
        var kept = await AddSourceAsync(group, agent);
        var removed = await AddSourceAsync(group, agent);
        await RecoveryPointAsync(group, kept, agent, copiedToVault: true);
        await WaitForAsync($"?groupId={group}", r => Lists(r, kept, s => s.GetProperty("compliant").GetBoolean()) && Lists(r, removed));
        _clock.Advance(TimeSpan.FromMinutes(30));
        var beforeRemoval = _clock.GetUtcNow();
        _clock.Advance(TimeSpan.FromMinutes(1));

        var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/data-sources/{removed}?data=Retain");
        request.Headers.Add("X-Security-Pin", await _client.PinAsync());
        var response = await _client.Http.SendAsync(request, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        // The daemon past the removal: every projection has applied every event appended so far.
        await Store.WaitForNonStaleProjectionDataAsync(TimeSpan.FromSeconds(60));
        _clock.Advance(TimeSpan.FromHours(3)); // the removed data source would be long overdue, had it stayed

        var now = await ComplianceAsync($"?groupId={group}");
        Lists(now, removed).ShouldBeFalse();
        now.GetProperty("overall").GetProperty("dataSources").GetInt32().ShouldBe(1);
        now.GetProperty("groups").EnumerateArray().ShouldHaveSingleItem().GetProperty("dataSources").GetInt32().ShouldBe(1);
        (await ComplianceAsync($"?dataSourceId={removed}")).GetProperty("dataSources").GetArrayLength().ShouldBe(0);

        var then = await ComplianceAsync($"?groupId={group}&asOf={Uri.EscapeDataString(beforeRemoval.ToString("O"))}");
        Lists(then, removed).ShouldBeTrue("as of before its removal it was protected");
        then.GetProperty("overall").GetProperty("dataSources").GetInt32().ShouldBe(2);
    }
}
