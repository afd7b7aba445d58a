extern alias workers;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections.Auditing;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Backup.IntegrationTests.Auditing;

/// <summary>
/// The hash chain and the audit trail on the real API and PostgreSQL. Tamper tests edit rows behind Marten's back the
/// way an attacker with database access would, and put them back afterwards, since the tests share one schema.
/// </summary>
public sealed class AuditTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(Guid Group, Guid Agent, Guid DataSource)> SomeHistoryAsync()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"audit-{Guid.NewGuid():N}");
        var source = await _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        await _client.RequestBackupAsync(source);
        return (group, agent.AgentId, source);
    }

    /// <summary>Waits until the daemon has chained every event, and returns the verification of the whole log.</summary>
    private async Task<JsonElement> ChainedAsync()
    {
        var count = await api.EventCountAsync();
        return await _client.WaitForAsync("/api/audit/verify",
            v => v.GetProperty("intact").GetBoolean() && v.GetProperty("verified").GetInt64() == count);
    }

    private async Task<JsonElement> VerifyAsync(string query = "") => await _client.GetJsonAsync("/api/audit/verify" + query);

    private async Task<List<JsonElement>> EventsAsync(string query)
    {
        var page = await _client.GetJsonAsync("/api/audit/events" + query);
        return page.GetProperty("items").EnumerateArray().ToList();
    }

    private async Task<long> SequenceOfAsync(Guid streamId, string eventType) =>
        (await EventsAsync($"?streamId={streamId}&eventType={eventType}")).Single().GetProperty("sequence").GetInt64();

    private static async Task<int> SqlAsync(string sql, long sequence)
    {
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("seq", sequence);
        return await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<string> ScalarAsync(string sql, long sequence)
    {
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("seq", sequence);
        return (string)(await command.ExecuteScalarAsync(Ct))!;
    }

    private static void ShouldBeBrokenAt(JsonElement verification, long sequence, string reasonContains)
    {
        verification.GetProperty("intact").GetBoolean().ShouldBeFalse(verification.ToString());
        verification.GetProperty("firstBrokenSequence").GetInt64().ShouldBe(sequence, verification.ToString());
        verification.GetProperty("reason").GetString()!.ShouldContain(reasonContains, Case.Insensitive);
    }

    [Fact]
    public async Task The_chain_covers_every_event_and_verifies_intact_whole_or_from_a_checkpoint()
    {
        await SomeHistoryAsync();
        var whole = await ChainedAsync();
        whole.GetProperty("firstBrokenSequence").ValueKind.ShouldBe(JsonValueKind.Null);
        whole.GetProperty("pending").GetInt64().ShouldBe(0);
        whole.GetProperty("headHash").GetString()!.Length.ShouldBe(64);

        var last = whole.GetProperty("chainedThrough").GetInt64();
        var fromMiddle = await VerifyAsync($"?from={last - 2}");
        fromMiddle.GetProperty("intact").GetBoolean().ShouldBeTrue(fromMiddle.ToString());
        fromMiddle.GetProperty("verified").GetInt64().ShouldBe(3);
        fromMiddle.GetProperty("headHash").GetString().ShouldBe(whole.GetProperty("headHash").GetString());
    }

    [Fact]
    public async Task An_event_whose_data_is_edited_in_the_database_is_the_first_broken_link()
    {
        var (group, _, _) = await SomeHistoryAsync();
        await ChainedAsync();
        var seq = await SequenceOfAsync(group, "protection_group_created.v1");

        var original = await ScalarAsync($"""SELECT data::text FROM "{api.Schema}".mt_events WHERE seq_id = @seq""", seq);
        await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET data = jsonb_set(data, ARRAY['name'], '"renamed behind your back"') WHERE seq_id = @seq""", seq);
        try
        {
            ShouldBeBrokenAt(await VerifyAsync(), seq, "does not match its link");
            // "Prove this history was not edited": an auditor's key (read only) is enough to ask, and gets the same answer.
            var auditor = new ApiClient(await api.CreateClientAsync("auditor"));
            ShouldBeBrokenAt(await auditor.GetJsonAsync("/api/audit/verify"), seq, "does not match its link");
            // Verification from a checkpoint after the edit does not look at it; from the edited event it does.
            (await VerifyAsync($"?from={seq + 1}")).GetProperty("intact").GetBoolean().ShouldBeTrue();
            ShouldBeBrokenAt(await VerifyAsync($"?from={seq}"), seq, "does not match its link");
        }
        finally
        {
            await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET data = '{original.Replace("'", "''", StringComparison.Ordinal)}'::jsonb WHERE seq_id = @seq""", seq);
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue("putting the original data back mends the chain");
    }

    [Fact]
    public async Task An_event_whose_actor_is_edited_is_the_first_broken_link()
    {
        var (group, _, _) = await SomeHistoryAsync();
        await ChainedAsync();
        var seq = await SequenceOfAsync(group, "protection_group_created.v1");

        await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET headers = jsonb_set(headers, ARRAY['actor'], '"someone-else"') WHERE seq_id = @seq""", seq);
        try
        {
            ShouldBeBrokenAt(await VerifyAsync(), seq, "does not match its link");
        }
        finally
        {
            await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET headers = jsonb_set(headers, ARRAY['actor'], '"user:bootstrap-admin"') WHERE seq_id = @seq""", seq);
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task An_event_given_a_binary_payload_is_the_first_broken_link()
    {
        var (group, _, _) = await SomeHistoryAsync();
        await ChainedAsync();
        var seq = await SequenceOfAsync(group, "protection_group_created.v1");

        // Marten reads an event from bdata instead of data when the column is set.
        await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET bdata = '\x0102'::bytea WHERE seq_id = @seq""", seq);
        try
        {
            ShouldBeBrokenAt(await VerifyAsync(), seq, "does not match its link");
        }
        finally
        {
            await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET bdata = NULL WHERE seq_id = @seq""", seq);
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task A_deleted_event_is_the_first_broken_link()
    {
        var (group, _, _) = await SomeHistoryAsync();
        await ChainedAsync();
        var seq = await SequenceOfAsync(group, "protection_group_created.v1");

        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        async Task ExecAsync(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("seq", seq);
            await command.ExecuteNonQueryAsync(Ct);
        }
        await ExecAsync($"""CREATE TEMP TABLE deleted AS SELECT * FROM "{api.Schema}".mt_events WHERE seq_id = @seq""");
        await ExecAsync($"""DELETE FROM "{api.Schema}".mt_events WHERE seq_id = @seq""");
        try
        {
            ShouldBeBrokenAt(await VerifyAsync(), seq, "deleted");
        }
        finally
        {
            await ExecAsync($"""INSERT INTO "{api.Schema}".mt_events SELECT * FROM deleted""");
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task An_edited_link_is_the_first_broken_link()
    {
        var (group, _, _) = await SomeHistoryAsync();
        await ChainedAsync();
        var seq = await SequenceOfAsync(group, "protection_group_created.v1");

        await using var session = api.Store.LightweightSession();
        var link = (await session.LoadAsync<AuditLink>(seq, Ct))!;
        var genuine = link.Hash;
        link.Hash = new string('0', 64);
        session.Store(link);
        await session.SaveChangesAsync(Ct);
        try
        {
            ShouldBeBrokenAt(await VerifyAsync(), seq, "does not match its link");
        }
        finally
        {
            link.Hash = genuine;
            session.Store(link);
            await session.SaveChangesAsync(Ct);
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    /// <summary>A recovery point its agent has claimed: its stream holds BackupRequested and BackupStarted.</summary>
    private async Task<Guid> StartedBackupAsync()
    {
        var (agent, recoveryPoint) = await _client.QueuedBackupAsync($"/srv/{Guid.NewGuid():N}");
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        return recoveryPoint;
    }

    private async Task<List<string>> CustodyStepsAsync(Guid recoveryPoint) =>
        (await _client.GetJsonAsync($"/api/recovery-points/{recoveryPoint}/custody")).GetProperty("steps").EnumerateArray()
            .Select(s => s.GetProperty("step").GetString()!).ToList();

    [Theory]
    [InlineData(0)]
    [InlineData(-7)]
    public async Task A_row_inserted_with_a_sequence_below_one_is_caught_and_shown_in_custody(long forged)
    {
        var recoveryPoint = await StartedBackupAsync();
        await ChainedAsync();
        var started = await SequenceOfAsync(recoveryPoint, "backup_started.v1");

        // A forged copy of a genuine step, numbered where PostgreSQL's sequence never goes and the daemon never reads.
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        async Task ExecAsync(string sql)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("seq", started);
            command.Parameters.AddWithValue("forged", forged);
            await command.ExecuteNonQueryAsync(Ct);
        }
        await ExecAsync($"""CREATE TEMP TABLE forged AS SELECT * FROM "{api.Schema}".mt_events WHERE seq_id = @seq""");
        await ExecAsync("UPDATE forged SET seq_id = @forged, id = gen_random_uuid(), version = 1000");
        await ExecAsync($"""INSERT INTO "{api.Schema}".mt_events SELECT * FROM forged""");
        try
        {
            ShouldBeBrokenAt(await VerifyAsync(), forged, "inserted");
            // A checkpoint vouches for the links before it, not for a row that no link ever covered.
            ShouldBeBrokenAt(await VerifyAsync($"?from={started}"), forged, "inserted");
            (await CustodyStepsAsync(recoveryPoint)).ShouldBe(["Started", "Requested", "Started"]);
        }
        finally
        {
            await ExecAsync($"""DELETE FROM "{api.Schema}".mt_events WHERE seq_id = @forged""");
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task An_event_archived_apart_from_its_stream_is_caught_and_still_shown_in_custody()
    {
        var recoveryPoint = await StartedBackupAsync();
        await ChainedAsync();
        var started = await SequenceOfAsync(recoveryPoint, "backup_started.v1");

        await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET is_archived = true WHERE seq_id = @seq""", started);
        try
        {
            ShouldBeBrokenAt(await VerifyAsync(), started, "archived");
            // No link covers the flag, so a checkpoint after the event does not vouch for it.
            ShouldBeBrokenAt(await VerifyAsync($"?from={started + 1}"), started, "archived");
            (await CustodyStepsAsync(recoveryPoint)).ShouldBe(["Requested", "Started"]);
        }
        finally
        {
            await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET is_archived = false WHERE seq_id = @seq""", started);
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task Archiving_a_whole_stream_keeps_the_chain_intact_and_the_custody_whole()
    {
        var recoveryPoint = await StartedBackupAsync();
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.ArchiveStream(recoveryPoint);
            await session.SaveChangesAsync(Ct);
        }
        await ChainedAsync();
        (await CustodyStepsAsync(recoveryPoint)).ShouldBe(["Requested", "Started"]);
    }

    [Fact]
    public async Task A_deleted_link_is_named_as_a_deleted_link_not_as_an_inserted_event()
    {
        var (group, _, _) = await SomeHistoryAsync();
        var whole = await ChainedAsync();
        var seq = await SequenceOfAsync(group, "protection_group_created.v1");
        var head = whole.GetProperty("chainedThrough").GetInt64();

        await using var session = api.Store.LightweightSession();
        var links = (await session.LoadManyAsync<AuditLink>(Ct, seq, head)).ToDictionary(l => l.Id);
        links.Count.ShouldBe(2);
        session.Delete<AuditLink>(seq);
        await session.SaveChangesAsync(Ct);
        try
        {
            var verification = await VerifyAsync();
            ShouldBeBrokenAt(verification, seq, "link was deleted");
            verification.GetProperty("reason").GetString()!.ShouldNotContain("inserted");

            // The newest link has no link after it to vouch for its event, but the chain's progress still shows it was there.
            session.Store(links[seq]);
            session.Delete<AuditLink>(head);
            await session.SaveChangesAsync(Ct);
            verification = await VerifyAsync();
            ShouldBeBrokenAt(verification, head, "link was deleted");
            verification.GetProperty("pending").GetInt64().ShouldBe(0);
        }
        finally
        {
            foreach (var link in links.Values) session.Store(link);
            await session.SaveChangesAsync(Ct);
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task Verifying_from_beyond_the_head_reports_the_head_that_exists()
    {
        await SomeHistoryAsync();
        var whole = await ChainedAsync();
        foreach (var from in new[] { whole.GetProperty("chainedThrough").GetInt64() + 1, long.MaxValue })
        {
            var beyond = await VerifyAsync($"?from={from}");
            beyond.GetProperty("intact").GetBoolean().ShouldBeTrue(beyond.ToString());
            beyond.GetProperty("verified").GetInt64().ShouldBe(0);
            beyond.GetProperty("chainedThrough").GetInt64().ShouldBe(whole.GetProperty("chainedThrough").GetInt64(), beyond.ToString());
            beyond.GetProperty("headHash").GetString().ShouldBe(whole.GetProperty("headHash").GetString());
            beyond.GetProperty("pending").GetInt64().ShouldBe(0);
        }
    }

    /// <summary>The workers' anchor of the chain's current head, written to the API's vault.</summary>
    private async Task<AuditAnchor> AnchorAsync()
    {
        var vault = api.Services.GetRequiredService<VaultStore>();
        await vault.EnsureCreatedAsync(Ct);
        var worker = new workers::Backup.Workers.Auditing.AuditAnchorWorker(api.Services, vault, TimeProvider.System,
            Options.Create(new workers::Backup.Workers.Auditing.AuditAnchorOptions()), NullLogger<workers::Backup.Workers.Auditing.AuditAnchorWorker>.Instance);
        return (await worker.AnchorAsync(DateTimeOffset.UtcNow, Ct)).ShouldNotBeNull();
    }

    /// <summary>Recomputes every link from <paramref name="from"/> on over the rows as they are now, as someone with write access to the database could.</summary>
    private async Task RechainAsync(long from)
    {
        await using var session = api.Store.LightweightSession();
        var previous = (await session.LoadAsync<AuditLink>(from - 1, Ct))?.Hash ?? AuditChain.Genesis;
        var links = await session.Query<AuditLink>().Where(l => l.Id >= from).OrderBy(l => l.Id).ToListAsync(Ct);
        var rows = (await EventRows.ReadAsync(session, from - 1, links[^1].Id, Ct)).ToDictionary(r => r.Sequence);
        foreach (var link in links)
        {
            link.PreviousHash = previous;
            link.Hash = previous = AuditChain.Link(previous, rows[link.Id]);
            session.Store(link);
        }
        await session.SaveChangesAsync(Ct);
    }

    [Fact]
    public async Task A_history_edited_and_rechained_inside_the_database_is_caught_by_the_head_anchored_in_the_vault()
    {
        var (group, _, _) = await SomeHistoryAsync();
        await ChainedAsync();
        var anchor = await AnchorAsync();
        var intact = await VerifyAsync();
        intact.GetProperty("intact").GetBoolean().ShouldBeTrue(intact.ToString());
        intact.GetProperty("anchorsChecked").GetInt32().ShouldBeGreaterThanOrEqualTo(1);

        var seq = await SequenceOfAsync(group, "protection_group_created.v1");
        var original = await ScalarAsync($"""SELECT data::text FROM "{api.Schema}".mt_events WHERE seq_id = @seq""", seq);
        await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET data = jsonb_set(data, ARRAY['name'], '"renamed and re-chained"') WHERE seq_id = @seq""", seq);
        await RechainAsync(seq);
        try
        {
            // Inside the database everything agrees again; the vault's anchor does not.
            ShouldBeBrokenAt(await VerifyAsync(), anchor.Sequence, "anchored in the vault");
        }
        finally
        {
            await SqlAsync($"""UPDATE "{api.Schema}".mt_events SET data = '{original.Replace("'", "''", StringComparison.Ordinal)}'::jsonb WHERE seq_id = @seq""", seq);
            await RechainAsync(seq);
        }
        (await VerifyAsync()).GetProperty("intact").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task The_trail_filters_by_stream_type_actor_and_time()
    {
        var startedAt = DateTimeOffset.UtcNow.AddSeconds(-1);
        var (group, _, source) = await SomeHistoryAsync();

        var ofGroup = await EventsAsync($"?streamId={group}");
        ofGroup.Select(e => e.GetProperty("eventType").GetString()).ShouldBe(["protection_group_created.v1", "data_source_added_to_group.v1"]);
        ofGroup.ShouldAllBe(e => e.GetProperty("streamId").GetGuid() == group);

        var requested = await EventsAsync("?eventType=backup_requested.v1&limit=500");
        requested.ShouldNotBeEmpty();
        requested.ShouldAllBe(e => e.GetProperty("eventType").GetString() == "backup_requested.v1");

        (await EventsAsync($"?streamId={source}&actor=user:bootstrap-admin")).Count.ShouldBe(1);
        (await EventsAsync($"?streamId={source}&actor=agent:nobody")).ShouldBeEmpty();

        var window = $"from={Uri.EscapeDataString(startedAt.ToString("O"))}&to={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"))}";
        (await EventsAsync($"?streamId={group}&{window}")).Count.ShouldBe(2);
        (await EventsAsync($"?streamId={group}&from={Uri.EscapeDataString(DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"))}")).ShouldBeEmpty();
        (await EventsAsync($"?streamId={group}&to={Uri.EscapeDataString(startedAt.ToString("O"))}")).ShouldBeEmpty();
    }

    [Fact]
    public async Task The_cursor_pages_through_every_event_once_in_sequence_order()
    {
        await SomeHistoryAsync();
        var total = await api.EventCountAsync();
        var seen = new List<long>();
        long? after = 0;
        while (after is not null)
        {
            var page = await _client.GetJsonAsync($"/api/audit/events?limit=3&after={after}");
            var items = page.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("sequence").GetInt64()).ToList();
            items.Count.ShouldBeLessThanOrEqualTo(3);
            seen.AddRange(items);
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Null ? null : page.GetProperty("nextAfter").GetInt64();
        }
        seen.Count.ShouldBeGreaterThanOrEqualTo((int)total);
        seen.ShouldBe(seen.Distinct().Order().ToList());
    }

    [Theory]
    [InlineData("?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to")]
    [InlineData("?limit=0", "limit")]
    [InlineData("?limit=501", "limit")]
    [InlineData("?after=-1", "after")]
    [InlineData("?format=xml", "format")]
    [InlineData("?after=abc", "after")]
    [InlineData("?from=yesterday", "from")]
    [InlineData("?streamId=not-a-guid", "streamId")]
    public async Task A_bad_filter_is_a_400_naming_the_parameter(string query, string parameter)
    {
        var response = await _client.Http.GetAsync("/api/audit/events" + query, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, body);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        JsonDocument.Parse(body).RootElement.GetProperty("errors").EnumerateObject().Select(p => p.Name).ShouldContain(parameter, body);
    }

    [Fact]
    public async Task Verifying_from_a_sequence_below_one_is_a_400_naming_it()
    {
        var response = await _client.Http.GetAsync("/api/audit/verify?from=0", Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, body);
        JsonDocument.Parse(body).RootElement.GetProperty("errors").EnumerateObject().Select(p => p.Name).ShouldContain("from", body);
    }

    [Fact]
    public async Task The_csv_export_has_a_header_and_one_row_per_event()
    {
        await SomeHistoryAsync();
        var total = await api.EventCountAsync();
        var response = await _client.Http.GetAsync("/api/audit/events?format=csv&limit=2", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("text/csv");
        var lines = (await response.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines[0].ShouldBe("sequence,eventId,streamId,version,eventType,timestamp,actor,correlationId,causationId");
        (lines.Length - 1).ShouldBeGreaterThanOrEqualTo((int)total);
        lines.Skip(1).Select(l => long.Parse(l.Split(',')[0], System.Globalization.CultureInfo.InvariantCulture)).ShouldBeUnique();
    }

    [Fact]
    public async Task The_csv_export_of_one_stream_lists_exactly_its_events()
    {
        var (group, _, _) = await SomeHistoryAsync();
        var csv = await _client.Http.GetStringAsync($"/api/audit/events?format=csv&streamId={group}", Ct);
        var lines = csv.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Length.ShouldBe(3);
        lines[1].ShouldContain("protection_group_created.v1");
        lines[2].ShouldContain("data_source_added_to_group.v1");
    }

    [Fact]
    public async Task Events_carry_the_requests_correlation_id_the_command_as_causation_and_the_actor()
    {
        var correlation = $"audit-test-{Guid.NewGuid():N}";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/protection-groups") { Content = JsonContent.Create(new { name = $"corr-{Guid.NewGuid():N}" }) };
        request.Headers.Add("X-Correlation-Id", correlation);
        var response = await _client.Http.SendAsync(request, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created);
        response.Headers.GetValues("X-Correlation-Id").ShouldBe([correlation]);
        var group = await ApiClient.IdAsync(response);

        var created = (await EventsAsync($"?streamId={group}")).Single();
        created.GetProperty("correlationId").GetString().ShouldBe(correlation);
        created.GetProperty("causationId").GetString().ShouldBe("CreateProtectionGroup");
        created.GetProperty("actor").GetString().ShouldBe("user:bootstrap-admin");

        // Without the header the request's trace id correlates; an agent's own commands are its actions.
        var agent = await _client.EnrolAsync();
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/corr");
        var rp = await _client.RequestBackupAsync(source);
        var poll = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/jobs/next", agent.Credential), Ct);
        poll.StatusCode.ShouldBe(HttpStatusCode.OK);
        var started = (await EventsAsync($"?streamId={rp}&eventType=backup_started.v1")).Single();
        started.GetProperty("actor").GetString().ShouldBe($"agent:{agent.AgentId}");
        started.GetProperty("correlationId").GetString()!.ShouldMatch("^[0-9a-f]{32}$");
        started.GetProperty("correlationId").GetString().ShouldBe(poll.Headers.GetValues("X-Correlation-Id").Single());
    }

    [Fact]
    public async Task Swagger_documents_the_audit_endpoints_with_the_csv_export()
    {
        var paths = (await _client.GetJsonAsync("/swagger/v1/swagger.json")).GetProperty("paths");
        paths.TryGetProperty("/api/audit/verify", out _).ShouldBeTrue();
        var ok = paths.GetProperty("/api/audit/events").GetProperty("get").GetProperty("responses").GetProperty("200").GetProperty("content");
        ok.EnumerateObject().Select(c => c.Name).ShouldContain("text/csv");
        ok.EnumerateObject().Select(c => c.Name).ShouldContain("application/json");
    }
}
