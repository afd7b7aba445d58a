using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Backup.IntegrationTests.Access;

/// <summary>API keys for people and the security PIN for destructive operations, on the real API and PostgreSQL.</summary>
public sealed class AccessTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly HttpClient _admin = api.CreateClient();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Task<JsonElement> ShouldBeRejectedAsync(Func<Task<HttpResponseMessage>> call, HttpStatusCode status) => api.ShouldBeRejectedAsync(call, status);

    private async Task<JsonElement> IssueKeyAsync(string name, string role)
    {
        var response = await _admin.PostAsJsonAsync("/api/access/keys", new { name, role }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync(Ct));
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private static async Task<string> PinAsync(HttpClient admin)
    {
        var response = await admin.PostAsync("/api/access/security-pin", null, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("pin").GetString()!;
    }

    private static HttpRequestMessage Revoke(Guid keyId, string? pin)
    {
        var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/access/keys/{keyId}");
        if (pin is not null) request.Headers.Add("X-Security-Pin", pin);
        return request;
    }

    private async Task<List<JsonElement>> AuditAsync(string query) =>
        (await _admin.GetFromJsonAsync<JsonElement>("/api/audit/events" + query, Ct)).GetProperty("items").EnumerateArray().ToList();

    [Fact]
    public async Task A_person_acts_with_the_key_an_admin_issued_and_the_audit_trail_names_them()
    {
        var name = $"olga-{Guid.NewGuid():N}";
        var issued = await IssueKeyAsync(name, "operator");
        issued.GetProperty("role").GetString().ShouldBe("operator");
        var olga = api.CreateClientWithKey(issued.GetProperty("key").GetString()!);

        var created = await olga.PostAsJsonAsync("/api/protection-groups", new { name = $"olga-{Guid.NewGuid():N}" }, Ct);
        created.StatusCode.ShouldBe(HttpStatusCode.Created);
        var group = await ApiClient.IdAsync(created);
        (await AuditAsync($"?streamId={group}")).Single().GetProperty("actor").GetString().ShouldBe($"user:{name}");
        // An operator does not manage access.
        (await olga.PostAsJsonAsync("/api/access/keys", new { name = "x", role = "admin" }, Ct)).StatusCode.ShouldBe(HttpStatusCode.Forbidden);

        var issuedEvent = (await AuditAsync($"?streamId={issued.GetProperty("keyId").GetGuid()}")).Single();
        issuedEvent.GetProperty("eventType").GetString().ShouldBe("api_key_issued.v1");
        issuedEvent.GetProperty("actor").GetString().ShouldBe("user:bootstrap-admin");
    }

    [Fact]
    public async Task The_key_is_shown_once_and_the_list_shows_who_has_which_role_but_never_a_key()
    {
        var name = $"audrey-{Guid.NewGuid():N}";
        var issued = await IssueKeyAsync(name, "auditor");
        var key = issued.GetProperty("key").GetString()!;
        var secret = key[(key.IndexOf('.', StringComparison.Ordinal) + 1)..];

        var list = await (await api.CreateClientWithKey(key).GetAsync("/api/access/keys", Ct)).Content.ReadAsStringAsync(Ct);
        list.ShouldContain(name);
        list.ShouldNotContain(secret);
        list.ShouldNotContain("hash", Case.Insensitive);
        var entry = JsonDocument.Parse(list).RootElement.EnumerateArray().Single(k => k.GetProperty("name").GetString() == name);
        entry.GetProperty("role").GetString().ShouldBe("auditor");
        entry.GetProperty("revokedAt").ValueKind.ShouldBe(JsonValueKind.Null);
        (await EventDataAsync("api_key_issued.v1")).ShouldAllBe(data => !data.Contains(secret));
    }

    [Fact]
    public async Task An_unknown_role_is_a_400_naming_the_role()
    {
        var problem = await ShouldBeRejectedAsync(() => _admin.PostAsJsonAsync("/api/access/keys", new { name = "eve", role = "superuser" }, Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "role");
        problem = await ShouldBeRejectedAsync(() => _admin.PostAsJsonAsync("/api/access/keys", new { name = "eve", role = "agent" }, Ct), HttpStatusCode.BadRequest);
        Rejections.ShouldName(problem, "role");
    }

    [Fact]
    public async Task A_blank_or_missing_name_is_a_400_naming_the_name()
    {
        Rejections.ShouldName(await ShouldBeRejectedAsync(() => _admin.PostAsJsonAsync("/api/access/keys", new { name = "  ", role = "operator" }, Ct), HttpStatusCode.BadRequest), "name");
        Rejections.ShouldName(await ShouldBeRejectedAsync(() => _admin.PostAsJsonAsync("/api/access/keys", new { role = "operator" }, Ct), HttpStatusCode.BadRequest), "name");
    }

    [Fact]
    public async Task A_name_already_taken_is_a_409_even_after_revocation_and_the_bootstrap_name_is_taken()
    {
        var name = $"dup-{Guid.NewGuid():N}";
        var first = await IssueKeyAsync(name, "operator");
        await ShouldBeRejectedAsync(() => _admin.PostAsJsonAsync("/api/access/keys", new { name = " " + name.ToUpperInvariant(), role = "auditor" }, Ct), HttpStatusCode.Conflict);

        var revoked = await _admin.SendAsync(Revoke(first.GetProperty("keyId").GetGuid(), await PinAsync(_admin)), Ct);
        revoked.StatusCode.ShouldBe(HttpStatusCode.NoContent);
        await ShouldBeRejectedAsync(() => _admin.PostAsJsonAsync("/api/access/keys", new { name, role = "operator" }, Ct), HttpStatusCode.Conflict);
        await ShouldBeRejectedAsync(() => _admin.PostAsJsonAsync("/api/access/keys", new { name = "bootstrap-admin", role = "admin" }, Ct), HttpStatusCode.Conflict);
    }

    [Fact]
    public async Task Unknown_and_malformed_keys_are_a_401_problem()
    {
        var problem = await ShouldBeRejectedAsync(() => api.CreateClientWithKey($"{Guid.NewGuid():N}.not-a-secret").GetAsync("/api/protection-groups", Ct), HttpStatusCode.Unauthorized);
        problem.GetProperty("detail").GetString()!.ShouldContain("API key");
        await ShouldBeRejectedAsync(() => api.CreateClientWithKey("garbage").GetAsync("/api/protection-groups", Ct), HttpStatusCode.Unauthorized);
        var anonymous = await api.CreateAnonymousClient().GetAsync("/api/protection-groups", Ct);
        anonymous.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        anonymous.Headers.WwwAuthenticate.Select(h => h.Scheme).ShouldContain("ApiKey");
    }

    [Fact]
    public async Task Revoking_a_key_needs_a_security_pin_and_the_revoked_key_is_refused()
    {
        var issued = await IssueKeyAsync($"leaver-{Guid.NewGuid():N}", "operator");
        var keyId = issued.GetProperty("keyId").GetGuid();
        var leaver = api.CreateClientWithKey(issued.GetProperty("key").GetString()!);
        (await leaver.GetAsync("/api/protection-groups", Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var missing = await ShouldBeRejectedAsync(() => _admin.SendAsync(Revoke(keyId, null), Ct), HttpStatusCode.Forbidden);
        missing.GetProperty("detail").GetString()!.ShouldContain("X-Security-Pin");
        var pin = await PinAsync(_admin);
        var wrong = (int.Parse(pin, System.Globalization.CultureInfo.InvariantCulture) + 1) % 100_000_000;
        var wrongProblem = await ShouldBeRejectedAsync(() => _admin.SendAsync(Revoke(keyId, wrong.ToString("D8", System.Globalization.CultureInfo.InvariantCulture)), Ct), HttpStatusCode.Forbidden);
        wrongProblem.GetProperty("detail").GetString()!.ShouldContain("X-Security-Pin");
        (await leaver.GetAsync("/api/protection-groups", Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);

        var before = await api.EventCountAsync();
        (await _admin.SendAsync(Revoke(keyId, pin), Ct)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        (await api.EventCountAsync()).ShouldBe(before + 2, "the revocation and the PIN's use, in one transaction");

        var refused = await leaver.GetAsync("/api/protection-groups", Ct);
        refused.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        refused.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json");
        var used = (await AuditAsync("?eventType=security_pin_used.v1&limit=500")).Last();
        used.GetProperty("actor").GetString().ShouldBe("user:bootstrap-admin");
        var revokedEvent = (await AuditAsync($"?streamId={keyId}")).Last();
        revokedEvent.GetProperty("eventType").GetString().ShouldBe("api_key_revoked.v1");
        revokedEvent.GetProperty("correlationId").GetString().ShouldBe(used.GetProperty("correlationId").GetString());

        // A PIN works once.
        var another = await IssueKeyAsync($"other-{Guid.NewGuid():N}", "auditor");
        var reused = await ShouldBeRejectedAsync(() => _admin.SendAsync(Revoke(another.GetProperty("keyId").GetGuid(), pin), Ct), HttpStatusCode.Forbidden);
        reused.GetProperty("detail").GetString()!.ShouldContain("already been used");
    }

    [Fact]
    public async Task A_refused_revocation_leaves_the_pin_unused()
    {
        var pin = await PinAsync(_admin);
        await ShouldBeRejectedAsync(() => _admin.SendAsync(Revoke(Guid.NewGuid(), pin), Ct), HttpStatusCode.NotFound);

        var issued = await IssueKeyAsync($"later-{Guid.NewGuid():N}", "auditor");
        (await _admin.SendAsync(Revoke(issued.GetProperty("keyId").GetGuid(), pin), Ct)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task A_pin_expires_after_five_minutes()
    {
        var clock = new ShiftedClock();
        await using var later = api.WithHost(b => b
            .ConfigureTestServices(s => s.AddSingleton<TimeProvider>(clock)));
        var admin = later.CreateClient();
        var issued = await IssueKeyAsync($"expiry-{Guid.NewGuid():N}", "auditor");
        var pin = await PinAsync(admin);

        clock.Offset = TimeSpan.FromMinutes(5) + TimeSpan.FromSeconds(5);
        var problem = await ShouldBeRejectedAsync(() => admin.SendAsync(Revoke(issued.GetProperty("keyId").GetGuid(), pin), Ct), HttpStatusCode.Forbidden);
        problem.GetProperty("detail").GetString()!.ShouldContain("expired");
    }

    [Fact]
    public async Task The_security_pin_is_never_stored_only_that_it_was_issued()
    {
        var pin = await PinAsync(_admin);
        var issued = await EventDataAsync("security_pin_issued.v1");
        issued.ShouldNotBeEmpty();
        issued.ShouldAllBe(data => !data.Contains(pin));
        (await AuditAsync("?eventType=security_pin_issued.v1&limit=500")).Last().GetProperty("actor").GetString().ShouldBe("user:bootstrap-admin");
    }

    [Fact]
    public async Task Only_admins_get_a_security_pin()
    {
        var operatorClient = await api.CreateClientAsync("operator");
        await ShouldBeRejectedAsync(() => operatorClient.PostAsync("/api/access/security-pin", null, Ct), HttpStatusCode.Forbidden);
        await ShouldBeRejectedAsync(() => api.CreateAnonymousClient().PostAsync("/api/access/security-pin", null, Ct), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public void A_short_bootstrap_key_stops_the_api_at_start_without_showing_the_key()
    {
        const string weak = "admin123";
        using var weakApi = api.WithHost(b => b.UseSetting("Backup:BootstrapAdminKey", weak));
        var failure = Should.Throw<Exception>(() => weakApi.CreateClient());
        failure.ToString().ShouldContain("Backup:BootstrapAdminKey must be at least 16 characters");
        failure.ToString().ShouldNotContain(weak);
    }

    private async Task<List<string>> EventDataAsync(string alias)
    {
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand($"""SELECT data::text || coalesce(headers::text, '') FROM "{api.Schema}".mt_events WHERE type = @type""", connection);
        command.Parameters.AddWithValue("type", alias);
        var rows = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct)) rows.Add(reader.GetString(0));
        return rows;
    }

    private sealed class ShiftedClock : TimeProvider
    {
        public TimeSpan Offset { get; set; }

        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;
    }
}
