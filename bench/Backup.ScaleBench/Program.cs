using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.Scheduling;
using Backup.Storage.Blobs;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Npgsql;

// Scale benchmark (issue 5): AGENTS in-process agent clients × SOURCES data sources each against the real API and worker
// processes, whose clocks run SPEED times real time (Backup:Clock), through HOURS simulated hours of 15-minute schedules.
// Measures the scheduler's lag (due instant → BackupRequested appended, in real seconds), dispatch → claim, events per
// second, and checks every due instant was requested exactly once. Run by bench/scale.sh, never by the tests.

var a = Args.Parse(args);
var json = new JsonSerializerOptions(JsonSerializerDefaults.Web) { Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() } };
using var admin = new HttpClient { BaseAddress = new Uri(a.Api), Timeout = TimeSpan.FromMinutes(2) };
admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", a.AdminKey);
var start = a.Start;
var epoch = a.Epoch;
DateTimeOffset Sim(DateTimeOffset real) => start + (real - epoch) * a.Speed;
DateTimeOffset Real(DateTimeOffset sim) => epoch + (sim - start) / a.Speed;
void Say(string text) => Console.Error.WriteLine($"[{DateTimeOffset.UtcNow:HH:mm:ss}] {text}");

// 12 groups, one per quarter-hour of a 3-hour cycle: group g takes recovery points at g×15 min + k×3 h (8 a day, kept 7 days,
// 56 points ≤ 64), so every 15-minute slot of the day is due for the data sources of one group.
const int groupsCount = 12;
var policies = new ShortTermPolicy[groupsCount];
var groupIds = new Guid[groupsCount];
for (var g = 0; g < groupsCount; g++)
{
    var times = Enumerable.Range(0, 8).Select(k => TimeOnly.FromTimeSpan(TimeSpan.FromMinutes(g * 15 + k * 180))).ToArray();
    policies[g] = new ShortTermPolicy(7, SynchronisationMode.JustBeforeRecoveryPoint, null, times, [.. Enum.GetValues<DayOfWeek>()], "UTC");
    var created = await admin.PostAsJsonAsync("/api/protection-groups", new { name = $"scale-{g:D2}-{Guid.NewGuid():N}" });
    created.EnsureSuccessStatusCode();
    groupIds[g] = (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    var put = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{groupIds[g]}/short-term-policy")
    {
        Content = JsonContent.Create(new
        {
            retentionDays = 7, synchronisation = "JustBeforeRecoveryPoint", recoveryPointTimes = times.Select(t => t.ToString("HH:mm", CultureInfo.InvariantCulture)),
            recoveryPointDays = Enum.GetValues<DayOfWeek>().Select(d => d.ToString()), timeZone = "UTC",
        }),
        Headers = { IfMatch = { EntityTagHeaderValue.Any } },
    };
    (await admin.SendAsync(put)).EnsureSuccessStatusCode();
}

var agents = new List<(EnrolAgentResponse Agent, HttpClient Http)>();
var sourceGroup = new Dictionary<Guid, int>();
for (var i = 0; i < a.Agents; i++)
{
    var token = (await (await admin.PostAsJsonAsync("/api/enrolment-tokens", new { validForMinutes = 60 })).EnsureSuccessStatusCode()
        .Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!;
    var enrolled = (await (await admin.PostAsJsonAsync("/api/agents/enrol", new EnrolAgentRequest(token, $"scale-agent-{i:D3}"))).EnsureSuccessStatusCode()
        .Content.ReadFromJsonAsync<EnrolAgentResponse>())!;
    var http = new HttpClient { BaseAddress = new Uri(a.Api), Timeout = TimeSpan.FromMinutes(2) };
    http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(AgentHeaders.Scheme, enrolled.Credential);
    agents.Add((enrolled, http));
    for (var j = 0; j < a.Sources; j++)
    {
        var g = (i * a.Sources + j) % groupsCount;
        var added = await admin.PostAsJsonAsync($"/api/protection-groups/{groupIds[g]}/data-sources", new { agentId = enrolled.AgentId, kind = "Folder", path = $"/srv/agent-{i:D3}/share-{j}" });
        added.EnsureSuccessStatusCode();
        sourceGroup[(await added.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid()] = g;
    }
}
var setUp = DateTimeOffset.UtcNow;
Say($"set up {groupsCount} groups, {a.Agents} agents, {sourceGroup.Count} data sources; simulated time now {Sim(setUp):u}");
if (Sim(setUp) > start) Console.Error.WriteLine($"warning: set-up ended after the window's start ({Sim(setUp):u} > {start:u}); raise SETUP_SECONDS");

// The agents: each polls for its next job (every POLL real seconds, jittered) and takes it as a small incremental backup: one
// new pack of one 4 KiB chunk, then the commit with a few catalog items.
var keys = MasterKeys.Generate();
var stop = new CancellationTokenSource();
var taken = 0;
var failures = new ConcurrentQueue<string>();
var window = (From: Real(start), To: Real(start + TimeSpan.FromHours(a.Hours)));
var loops = agents.Select(async agent =>
{
    var random = new Random(agent.Agent.AgentId.GetHashCode());
    await Task.Delay(TimeSpan.FromSeconds(random.NextDouble() * a.Poll));
    while (!stop.IsCancellationRequested)
    {
        try
        {
            using var next = await agent.Http.PostAsync($"api/agents/{agent.Agent.AgentId}/jobs/next", null);
            if (next.StatusCode == HttpStatusCode.OK && await next.Content.ReadFromJsonAsync<AgentJob>(json) is { Kind: JobKind.Backup } job)
            {
                await BackupAsync(agent.Agent, agent.Http, job);
                Interlocked.Increment(ref taken);
                continue;
            }
        }
        catch (Exception e) when (!stop.IsCancellationRequested)
        {
            failures.Enqueue(e.Message);
        }
        try { await Task.Delay(TimeSpan.FromSeconds(a.Poll * (0.8 + 0.4 * random.NextDouble())), stop.Token); }
        catch (OperationCanceledException) { }
    }
}).ToList();

async Task BackupAsync(EnrolAgentResponse agent, HttpClient http, AgentJob job)
{
    var file = Path.Combine(Path.GetTempPath(), $"scale-pack-{Guid.NewGuid():N}");
    try
    {
        using var envelope = new BlobEnvelope(keys);
        var chunk = RandomNumberGenerator.GetBytes(4096);
        var id = envelope.ComputeId(chunk);
        string packId;
        await using (var builder = new PackBuilder(file))
        {
            builder.Add(id, envelope.Seal(chunk), chunk.Length);
            (packId, _) = await builder.FinishAsync(CancellationToken.None);
        }
        await using (var stream = File.OpenRead(file))
        {
            using var content = new StreamContent(stream);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            (await http.PutAsync($"api/agents/{agent.AgentId}/recovery-points/{job.RecoveryPointId}/packs/{packId}", content)).EnsureSuccessStatusCode();
        }
        var now = DateTimeOffset.UtcNow;
        var commit = await http.PostAsJsonAsync($"api/agents/{agent.AgentId}/recovery-points/{job.RecoveryPointId}/complete",
            new CompleteBackupRequest([id.ToString()], Convert.ToBase64String(id.ToArray()), 2, 1, 8192, [],
                [new CatalogEntry("docs", EntryKind.Directory, 0, now), new CatalogEntry("docs/a.txt", EntryKind.File, 4096, now), new CatalogEntry("b.txt", EntryKind.File, 4096, now)]), json);
        if (!commit.IsSuccessStatusCode) failures.Enqueue($"commit {(int)commit.StatusCode}: {await commit.Content.ReadAsStringAsync()}");
    }
    finally
    {
        File.Delete(file);
    }
}

var end = window.To + TimeSpan.FromSeconds(a.Drain);
Say($"running until {end:HH:mm:ss} (window {window.From:HH:mm:ss}–{window.To:HH:mm:ss} real, {a.Hours} simulated hours at {a.Speed}x)");
while (DateTimeOffset.UtcNow < end)
{
    await Task.Delay(TimeSpan.FromSeconds(30));
    Say($"simulated {Sim(DateTimeOffset.UtcNow):u}: {taken} backups taken, {failures.Count} failures");
}
stop.Cancel();
await Task.WhenAll(loops);

// Results, from the event log itself.
await using var db = new NpgsqlConnection(a.Postgres);
await db.OpenAsync();
var requested = new List<(Guid Stream, Guid DataSource, DateTimeOffset Due, DateTimeOffset Appended)>();
await using (var command = new NpgsqlCommand(
    $"select stream_id, data->>'DataSourceId', data->>'RequestedAt', timestamp from \"{a.Schema}\".mt_events where type = 'backup_requested.v1' and data->>'RequestedBy' = 'scheduler'", db))
await using (var reader = await command.ExecuteReaderAsync())
    while (await reader.ReadAsync())
        requested.Add((reader.GetGuid(0), Guid.Parse(reader.GetString(1)), DateTimeOffset.Parse(reader.GetString(2), CultureInfo.InvariantCulture), reader.GetFieldValue<DateTimeOffset>(3)));
var started = new Dictionary<Guid, DateTimeOffset>();
await using (var command = new NpgsqlCommand($"select stream_id, min(timestamp) from \"{a.Schema}\".mt_events where type = 'backup_started.v1' group by stream_id", db))
await using (var reader = await command.ExecuteReaderAsync())
    while (await reader.ReadAsync()) started[reader.GetGuid(0)] = reader.GetFieldValue<DateTimeOffset>(1);
long eventsInWindow;
await using (var command = new NpgsqlCommand($"select count(*) from \"{a.Schema}\".mt_events where timestamp >= @from and timestamp < @to", db))
{
    command.Parameters.AddWithValue("from", window.From.UtcDateTime);
    command.Parameters.AddWithValue("to", window.To.UtcDateTime);
    eventsInWindow = (long)(await command.ExecuteScalarAsync())!;
}

var inWindow = requested.Where(r => r.Due >= start && r.Due < start + TimeSpan.FromHours(a.Hours)).ToList();
var expected = sourceGroup.Sum(s => ShortTermCalendar.RecoveryPoints(policies[s.Value], start - TimeSpan.FromTicks(1))
    .TakeWhile(t => t < start + TimeSpan.FromHours(a.Hours)).Count());
var duplicates = inWindow.Count - inWindow.Select(r => (r.DataSource, r.Due)).Distinct().Count();
var lags = inWindow.Select(r => (r.Appended - Real(r.Due)).TotalSeconds).Order().ToList();
var claims = inWindow.Where(r => started.ContainsKey(r.Stream)).Select(r => (started[r.Stream] - r.Appended).TotalSeconds).Order().ToList();
double P(List<double> xs, double q) => xs.Count == 0 ? double.NaN : xs[Math.Min(xs.Count - 1, (int)Math.Ceiling(q * xs.Count) - 1)];
var seconds = (window.To - window.From).TotalSeconds;
var row = string.Join('\t', a.Workers, a.Agents, sourceGroup.Count, a.Speed, a.Hours, expected, inWindow.Count, duplicates,
    (eventsInWindow / seconds).ToString("F0", CultureInfo.InvariantCulture),
    P(lags, 0.5).ToString("F2", CultureInfo.InvariantCulture), P(lags, 0.99).ToString("F2", CultureInfo.InvariantCulture),
    (lags.Count == 0 ? double.NaN : lags[^1]).ToString("F2", CultureInfo.InvariantCulture),
    P(claims, 0.5).ToString("F2", CultureInfo.InvariantCulture), P(claims, 0.99).ToString("F2", CultureInfo.InvariantCulture),
    claims.Count, failures.Count);
Console.WriteLine(row);
foreach (var f in failures.Distinct().Take(5)) Console.Error.WriteLine($"failure: {f}");
return inWindow.Count == expected && duplicates == 0 ? 0 : 2;

internal sealed record Args(
    string Api, string AdminKey, string Postgres, string Schema, int Agents, int Sources, double Speed, double Hours,
    DateTimeOffset Start, DateTimeOffset Epoch, double Poll, double Drain, int Workers)
{
    public static Args Parse(string[] args)
    {
        var d = new Dictionary<string, string>();
        for (var i = 0; i + 1 < args.Length; i += 2) d[args[i].TrimStart('-')] = args[i + 1];
        string Get(string key) => d.TryGetValue(key, out var v) ? v : throw new ArgumentException($"--{key} is required");
        double Num(string key, double fallback) => d.TryGetValue(key, out var v) ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;
        return new Args(Get("api"), Get("admin-key"), Get("postgres"), Get("schema"), (int)Num("agents", 200), (int)Num("sources", 5),
            Num("speed", 240), Num("hours", 24), DateTimeOffset.Parse(Get("start"), CultureInfo.InvariantCulture),
            DateTimeOffset.Parse(Get("epoch"), CultureInfo.InvariantCulture), Num("poll", 5), Num("drain", 60), (int)Num("workers", 1));
    }
}
