using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.Api;

/// <summary>Policy edits through the API: conditional on the group's ETag, validated, and nothing appended when refused.</summary>
public sealed class PolicyTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly object ShortTerm = new
    {
        retentionDays = 5, synchronisation = "Interval", syncIntervalMinutes = 15,
        recoveryPointTimes = new[] { "20:00", "08:00" }, recoveryPointDays = new[] { "Monday", "Wednesday", "Friday" },
        timeZone = "Europe/London",
    };

    private static readonly object Online = new
    {
        backupTimes = new[] { "12:30", "21:00" }, schedule = "Daily",
        dailyRetentionDays = 180, weeklyRetentionWeeks = 104, monthlyRetentionMonths = 60, yearlyRetentionYears = 10,
    };

    private Task<HttpResponseMessage> PutAsync(Guid groupId, string policy, object body, string? ifMatch)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{groupId}/{policy}") { Content = JsonContent.Create(body) };
        if (ifMatch is not null) request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        return _client.Http.SendAsync(request, Ct);
    }

    private async Task<(JsonElement Group, string ETag)> GetGroupAsync(Guid groupId)
    {
        var response = await _client.Http.GetAsync($"/api/protection-groups/{groupId}", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK);
        return (await response.Content.ReadFromJsonAsync<JsonElement>(Ct), response.Headers.ETag!.ToString());
    }

    private async Task<string> PutOkAsync(Guid groupId, string policy, object body, string ifMatch)
    {
        var response = await PutAsync(groupId, policy, body, ifMatch);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        var etag = response.Headers.ETag!.ToString();
        (await response.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("version").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture)
            .ShouldBe(etag.Trim('"'));
        return etag;
    }

    private Task<JsonElement> ShouldBeRejectedAsync(Func<Task<HttpResponseMessage>> call, HttpStatusCode status) => api.ShouldBeRejectedAsync(call, status);

    private static void ShouldName(JsonElement problem, string field) => Rejections.ShouldName(problem, field);

    private async Task<Guid> NewGroupAsync() => await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");

    [Fact]
    public async Task A_new_group_has_version_1_as_its_etag_and_no_policies()
    {
        var groupId = await NewGroupAsync();

        var (group, etag) = await GetGroupAsync(groupId);

        etag.ShouldBe("\"1\"");
        group.GetProperty("version").GetInt32().ShouldBe(1);
        group.GetProperty("shortTermPolicy").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task Setting_each_policy_with_the_current_etag_moves_the_etag_on_and_the_view_shows_it()
    {
        var groupId = await NewGroupAsync();
        var before = await api.EventCountAsync();

        var v2 = await PutOkAsync(groupId, "short-term-policy", ShortTerm, "\"1\"");
        var v3 = await PutOkAsync(groupId, "online-policy", Online, v2);
        var v4 = await PutOkAsync(groupId, "throttling",
            new { workHoursKbps = 2048, nonWorkHoursKbps = 102_400, workDays = new[] { "Monday", "Tuesday" }, workStart = "08:00", workEnd = "18:00" }, v3);
        var v5 = await PutOkAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = 2 }, v4);

        new[] { v2, v3, v4, v5 }.ShouldBe(["\"2\"", "\"3\"", "\"4\"", "\"5\""]);
        (await api.EventCountAsync()).ShouldBe(before + 4);
        var (group, etag) = await GetGroupAsync(groupId);
        etag.ShouldBe(v5);
        var shortTerm = group.GetProperty("shortTermPolicy");
        shortTerm.GetProperty("retentionDays").GetInt32().ShouldBe(5);
        shortTerm.GetProperty("synchronisation").GetString().ShouldBe("Interval");
        shortTerm.GetProperty("syncIntervalMinutes").GetInt32().ShouldBe(15);
        shortTerm.GetProperty("recoveryPointTimes").EnumerateArray().Select(t => t.GetString()).ShouldBe(["08:00:00", "20:00:00"]);
        shortTerm.GetProperty("recoveryPointDays").EnumerateArray().Select(t => t.GetString()).ShouldBe(["Monday", "Wednesday", "Friday"]);
        shortTerm.GetProperty("timeZone").GetString().ShouldBe("Europe/London");
        group.GetProperty("recoveryPointsKeptOnDisk").GetInt32().ShouldBe(6); // 5 days hold at most 3 of Mon/Wed/Fri, twice a day
        var online = group.GetProperty("onlinePolicy");
        online.GetProperty("backupTimes").GetArrayLength().ShouldBe(2);
        online.GetProperty("retention").GetProperty("yearlyYears").GetInt32().ShouldBe(10);
        group.GetProperty("onlineThrottling").GetProperty("nonWorkHoursKbps").GetInt32().ShouldBe(102_400);
        group.GetProperty("alertThresholdDays").GetInt32().ShouldBe(2);
    }

    [Fact]
    public async Task Each_edit_is_recorded_under_its_stable_alias()
    {
        var groupId = await NewGroupAsync();
        var v2 = await PutOkAsync(groupId, "short-term-policy", ShortTerm, "\"1\"");
        var v3 = await PutOkAsync(groupId, "online-policy", Online, v2);
        var v4 = await PutOkAsync(groupId, "throttling",
            new { workHoursKbps = 512, nonWorkHoursKbps = 1023 * 1024, workDays = new[] { "Friday" }, workStart = "00:00", workEnd = "23:59" }, v3);
        await PutOkAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = 1 }, v4);

        await using var connection = new Npgsql.NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var command = new Npgsql.NpgsqlCommand($"SELECT type FROM \"{api.Schema}\".mt_events WHERE stream_id = @id ORDER BY version", connection);
        command.Parameters.AddWithValue("id", groupId);
        var types = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(Ct))
            while (await reader.ReadAsync(Ct)) types.Add(reader.GetString(0));

        types.ShouldBe(["protection_group_created.v1", "short_term_policy_set.v1", "online_policy_set.v1", "online_throttling_set.v1", "alert_threshold_set.v1"]);
    }

    [Fact]
    public async Task Swagger_documents_the_policy_edits()
    {
        var doc = await _client.GetJsonAsync("/swagger/v1/swagger.json");
        var paths = doc.GetProperty("paths");
        foreach (var policy in new[] { "short-term-policy", "online-policy", "throttling", "alert-threshold" })
            paths.GetProperty($"/api/protection-groups/{{groupId}}/{policy}").TryGetProperty("put", out _).ShouldBeTrue(policy);
    }

    [Fact]
    public async Task A_stale_etag_is_a_412_and_nothing_is_appended()
    {
        var groupId = await NewGroupAsync();
        await PutOkAsync(groupId, "short-term-policy", ShortTerm, "\"1\"");

        var problem = await ShouldBeRejectedAsync(() => PutAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = 3 }, "\"1\""), HttpStatusCode.PreconditionFailed);

        problem.GetProperty("currentVersion").GetInt64().ShouldBe(2);
        (await GetGroupAsync(groupId)).Group.GetProperty("alertThresholdDays").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task Two_editors_racing_with_the_same_etag_make_one_change()
    {
        var groupId = await NewGroupAsync();
        var before = await api.EventCountAsync();

        var responses = await Task.WhenAll(Enumerable.Range(1, 4).Select(days =>
            PutAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = days }, "\"1\"")));

        responses.Count(r => r.StatusCode == HttpStatusCode.OK).ShouldBe(1);
        responses.Where(r => r.StatusCode != HttpStatusCode.OK).ShouldAllBe(r => r.StatusCode == HttpStatusCode.PreconditionFailed);
        (await api.EventCountAsync()).ShouldBe(before + 1);
        (await GetGroupAsync(groupId)).ETag.ShouldBe("\"2\"");
    }

    [Fact]
    public async Task Missing_if_match_is_a_428_and_star_overwrites_whatever_is_current()
    {
        var groupId = await NewGroupAsync();
        await PutOkAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = 3 }, "\"1\"");

        await ShouldBeRejectedAsync(() => PutAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = 4 }, null), (HttpStatusCode)428);
        (await PutOkAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = 4 }, "*")).ShouldBe("\"3\"");
    }

    [Theory]
    [InlineData("W/\"1\"")]
    [InlineData("\"1\", \"2\"")]
    [InlineData("1")]
    [InlineData("\"abc\"")]
    public async Task An_if_match_that_is_not_one_of_our_etags_is_a_400_naming_it(string ifMatch)
    {
        var groupId = await NewGroupAsync();
        var problem = await ShouldBeRejectedAsync(() => PutAsync(groupId, "alert-threshold", new { daysWithoutRecoveryPoint = 3 }, ifMatch), HttpStatusCode.BadRequest);
        ShouldName(problem, "If-Match");
    }

    [Fact]
    public async Task Unknown_group_is_a_404()
    {
        await ShouldBeRejectedAsync(() => PutAsync(Guid.NewGuid(), "short-term-policy", ShortTerm, "\"1\""), HttpStatusCode.NotFound);
        await ShouldBeRejectedAsync(() => PutAsync(Guid.NewGuid(), "alert-threshold", new { daysWithoutRecoveryPoint = 3 }, "*"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Online_policy_before_a_short_term_policy_is_a_409()
    {
        var groupId = await NewGroupAsync();
        await ShouldBeRejectedAsync(() => PutAsync(groupId, "online-policy", Online, "\"1\""), HttpStatusCode.Conflict);
    }

    public static TheoryData<string, string, string> InvalidPolicies => new()
    {
        { "short-term-policy", """{"retentionDays":449,"synchronisation":"Interval","syncIntervalMinutes":15,"recoveryPointTimes":["08:00"],"recoveryPointDays":["Sunday"],"timeZone":"UTC"}""", "retentionDays" },
        { "short-term-policy", """{"retentionDays":65,"synchronisation":"Interval","syncIntervalMinutes":15,"recoveryPointTimes":["08:00"],"recoveryPointDays":["Sunday","Monday","Tuesday","Wednesday","Thursday","Friday","Saturday"],"timeZone":"UTC"}""", "retentionDays" },
        { "short-term-policy", """{"retentionDays":5,"synchronisation":"Interval","syncIntervalMinutes":20,"recoveryPointTimes":["08:00"],"recoveryPointDays":["Sunday"],"timeZone":"UTC"}""", "syncIntervalMinutes" },
        { "short-term-policy", """{"retentionDays":5,"synchronisation":"Hourly","syncIntervalMinutes":15,"recoveryPointTimes":["08:00"],"recoveryPointDays":["Sunday"],"timeZone":"UTC"}""", "synchronisation" },
        { "short-term-policy", """{"retentionDays":5,"synchronisation":"Interval","syncIntervalMinutes":15,"recoveryPointTimes":["08:00","08:00"],"recoveryPointDays":["Sunday"],"timeZone":"UTC"}""", "recoveryPointTimes" },
        { "short-term-policy", """{"retentionDays":5,"synchronisation":"Interval","syncIntervalMinutes":15,"recoveryPointTimes":[],"recoveryPointDays":["Sunday"],"timeZone":"UTC"}""", "recoveryPointTimes" },
        { "short-term-policy", """{"retentionDays":5,"synchronisation":"Interval","syncIntervalMinutes":15,"recoveryPointTimes":["08:00"],"recoveryPointDays":["Funday"],"timeZone":"UTC"}""", "recoveryPointDays[0]" },
        { "short-term-policy", """{"retentionDays":5,"synchronisation":"Interval","syncIntervalMinutes":15,"recoveryPointTimes":["08:00"],"recoveryPointDays":["Sunday"],"timeZone":"Europe/Atlantis"}""", "timeZone" },
        { "short-term-policy", """{"retentionDays":5,"synchronisation":"Interval","syncIntervalMinutes":15,"recoveryPointTimes":["08:00"],"recoveryPointDays":["Sunday"]}""", "timeZone" },
        { "online-policy", """{"backupTimes":["06:00","12:00","21:00"],"schedule":"Daily","dailyRetentionDays":30}""", "backupTimes" },
        { "online-policy", """{"backupTimes":["21:00","21:00"],"schedule":"Daily","dailyRetentionDays":30}""", "backupTimes" },
        { "online-policy", """{"backupTimes":["21:00"],"schedule":"Daily","dailyRetentionDays":6}""", "dailyRetentionDays" },
        { "online-policy", """{"backupTimes":["21:00"],"schedule":"Daily","yearlyRetentionYears":100}""", "yearlyRetentionYears" },
        { "online-policy", """{"backupTimes":["21:00"],"schedule":"Weekly","days":[],"weeklyRetentionWeeks":4}""", "days" },
        { "online-policy", """{"backupTimes":["21:00"],"schedule":"Fortnightly","weeklyRetentionWeeks":4}""", "schedule" },
        { "online-policy", """{"backupTimes":["21:00"],"schedule":"Daily"}""", "retention" },
        { "throttling", """{"workHoursKbps":511,"nonWorkHoursKbps":1024,"workDays":["Monday"],"workStart":"09:00","workEnd":"17:00"}""", "workHoursKbps" },
        { "throttling", """{"workHoursKbps":1024,"nonWorkHoursKbps":1047553,"workDays":["Monday"],"workStart":"09:00","workEnd":"17:00"}""", "nonWorkHoursKbps" },
        { "throttling", """{"workHoursKbps":1024,"nonWorkHoursKbps":1024,"workDays":["Monday"],"workStart":"17:00","workEnd":"09:00"}""", "workEnd" },
        { "alert-threshold", """{"daysWithoutRecoveryPoint":31}""", "daysWithoutRecoveryPoint" },
        { "alert-threshold", """{}""", "daysWithoutRecoveryPoint" },
    };

    [Theory]
    [MemberData(nameof(InvalidPolicies))]
    public async Task An_invalid_policy_is_a_400_naming_the_field_and_nothing_is_appended(string policy, string json, string field)
    {
        var groupId = await NewGroupAsync();
        if (policy == "online-policy") await PutOkAsync(groupId, "short-term-policy", ShortTerm, "\"1\"");
        var etag = (await GetGroupAsync(groupId)).ETag;

        var problem = await ShouldBeRejectedAsync(
            () => PutAsync(groupId, policy, JsonDocument.Parse(json).RootElement, etag), HttpStatusCode.BadRequest);

        ShouldName(problem, field);
        (await GetGroupAsync(groupId)).ETag.ShouldBe(etag);
    }
}
