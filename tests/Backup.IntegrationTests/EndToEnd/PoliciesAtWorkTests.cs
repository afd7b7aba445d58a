using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Runtime.Versioning;
using System.Text.Json;
using Backup.Commands.Scheduling;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Marten;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// The issue's "done when", with the real API, workers and agent processes and the server's clock at 2880 times real time
/// (a simulated day in 30 seconds; the test-only <c>Backup:Clock</c>): a group created through the API with a 15-minute
/// synchronisation policy and a two-a-day online policy produces, with no further call, synchronisations and recovery points
/// on disk at the policy's instants, copies in the vault at its online times, and expires points from disk after a day.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class PoliciesAtWorkTests : IAsyncLifetime
{
    private const double Speed = 2880;
    private static readonly int[] PointHours = [0, 6, 12, 18];
    private static readonly DateTimeOffset Start = new(2027, 3, 1, 20, 0, 0, TimeSpan.Zero);
    private readonly ProductRun _run = new("policies");
    private readonly DateTimeOffset _epoch = DateTimeOffset.UtcNow;
    private ProductProcess? _workers;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DateTimeOffset ServerNow => Start + (DateTimeOffset.UtcNow - _epoch) * Speed;

    private Dictionary<string, string> Clock() => new()
    {
        ["Backup__Clock__Speed"] = Speed.ToString(CultureInfo.InvariantCulture),
        ["Backup__Clock__Start"] = Start.ToString("O"),
        ["Backup__Clock__Epoch"] = _epoch.ToString("O"),
        // In simulated time: a 4-hour lease is 5 real seconds; rounds no more often than every few hundred real milliseconds.
        ["Backup__JobLeases__Duration"] = "04:00:00",
        ["Backup__JobLeases__PickupTimeout"] = "1.00:00:00",
        ["Backup__JobLeases__ReaperInterval"] = "00:20:00",
        ["Backup__Alerts__CheckInterval"] = "01:00:00",
        ["Backup__Scheduler__TickInterval"] = "00:15:00",
        ["Backup__Scheduler__Lookback"] = "02:00:00",
    };

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync(Clock());
        _workers = ProductProcess.Start("Backup.Workers", _run.Environment(Clock()));
    }

    private static HttpRequestMessage Put(string url, object body)
    {
        var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = JsonContent.Create(body) };
        request.Headers.TryAddWithoutValidation("If-Match", "*");
        return request;
    }

    [Fact]
    public async Task A_15_minute_sync_policy_and_a_two_a_day_online_policy_make_points_on_disk_and_in_the_vault_and_expire_them_without_another_call()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "data"));
        for (var i = 0; i < 5; i++)
            await File.WriteAllBytesAsync(Path.Combine(folder.FullName, $"file-{i}.bin"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(64 << 10), Ct);
        var agent = _run.StartAgent("scheduled-machine", Path.Combine(_run.Work.FullName, "agent-state"), await _run.Client.IssueTokenAsync(validForMinutes: 7 * 24 * 60)); // a week here is 3.5 real minutes
        var agentId = await _run.WaitForAgentAsync("scheduled-machine", agent);

        var client = _run.Client;
        var group = await client.CreateGroupAsync("Scheduled");
        (await client.Http.SendAsync(Put($"/api/protection-groups/{group}/short-term-policy", new
        {
            retentionDays = 1, synchronisation = "Interval", syncIntervalMinutes = 15,
            recoveryPointTimes = PointHours.Select(h => $"{h:00}:00"), recoveryPointDays = Enum.GetNames<DayOfWeek>(), timeZone = "UTC",
        }), Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        (await client.Http.SendAsync(Put($"/api/protection-groups/{group}/online-policy", new
        {
            backupTimes = new[] { "03:00", "15:00" }, schedule = "Daily", dailyRetentionDays = 7,
        }), Ct)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var source = await client.AddFolderAsync(group, agentId, folder.FullName);
        // The server's instant, not this process's reading of the fast clock after the response: on a loaded machine each
        // real second between them is 48 simulated minutes.
        var protectedAt = (await client.GetJsonAsync($"/api/data-sources/{source}")).GetProperty("protectedAt").GetDateTimeOffset();

        // From here on, no call but reads. Wait (at most 3 real minutes) for a point copied to the vault and one expired from disk.
        List<JsonElement> points = [];
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (true)
        {
            points = [.. (await client.GetJsonAsync($"/api/recovery-points?dataSourceId={source}&limit=200")).GetProperty("items").EnumerateArray()];
            if (points.Any(p => p.GetProperty("inVault").GetBoolean()) && points.Any(p => p.TryGetProperty("expiredFromDiskAt", out var x) && x.ValueKind == JsonValueKind.String))
                break;
            if (DateTime.UtcNow > deadline || agent.HasExited)
                throw new TimeoutException($"At {ServerNow:O}: {points.Count} points\n{string.Join('\n', points)}\n{agent.Output}");
            await Task.Delay(500, Ct);
        }

        // Every point: asked for by the scheduler at one of the policy's times after the folder was protected, and created.
        var created = points.Where(p => p.GetProperty("status").GetString() == "Created").ToList();
        created.Count.ShouldBeGreaterThanOrEqualTo(4, "a day and more of 4 points a day");
        foreach (var p in points)
        {
            p.GetProperty("requestedBy").GetString().ShouldBe("scheduler");
            var at = p.GetProperty("requestedAt").GetDateTimeOffset();
            at.ShouldBeGreaterThan(protectedAt);
            (at.Minute, at.Second, PointHours.Contains(at.Hour)).ShouldBe((0, 0, true), $"{at:O} is not a recovery-point time");
        }
        // In the vault: copies of points already created, each made because the online schedule fell due at 03:00 or 15:00.
        // The due instant is the one the event that caused the copy carries, not when the copy was seen to finish: a loaded
        // machine may take simulated hours to upload, while a copy made as soon as the point was created has the point's
        // creation as its cause.
        await using var session = _run.Store.QuerySession();
        foreach (var p in created.Where(p => p.GetProperty("inVault").GetBoolean()))
        {
            var id = p.GetProperty("id").GetGuid();
            p.GetProperty("copiedToVaultAt").GetDateTimeOffset().ShouldBeGreaterThan(p.GetProperty("createdAt").GetDateTimeOffset());
            var started = (await session.Events.FetchStreamAsync(VaultTransfer.IdFor(id), token: Ct)).First(e => e.Data is VaultTransferStarted);
            var cause = await session.Events.QueryAllRawEvents().Where(e => e.Id == Guid.Parse(started.CausationId!)).SingleAsync(Ct);
            var due = cause.Data.ShouldBeOfType<OnlineBackupDue>($"the copy of {id} was caused by {cause.EventTypeName}, not by the online schedule");
            due.GroupId.ShouldBe(group);
            (due.DueAt.Hour, due.DueAt.Minute, due.DueAt.Second).ShouldBeOneOf((3, 0, 0), (15, 0, 0));
            ((VaultTransferStarted)started.Data).StartedAt.ShouldBeGreaterThanOrEqualTo(due.DueAt);
        }
        // Expired from disk after the one-day range, not before.
        foreach (var p in created.Where(p => p.TryGetProperty("expiredFromDiskAt", out var x) && x.ValueKind == JsonValueKind.String))
            (p.GetProperty("expiredFromDiskAt").GetDateTimeOffset() - p.GetProperty("createdAt").GetDateTimeOffset()).ShouldBeGreaterThan(TimeSpan.FromDays(1));

        // Between the points, the 15-minute synchronisations ran, each at a sync-only quarter hour.
        var syncs = (await client.GetJsonAsync($"/api/jobs?dataSourceId={source}&kind=Synchronisation&limit=500")).GetProperty("items").EnumerateArray()
            .Where(j => j.GetProperty("state").GetString() == "Succeeded").ToList();
        syncs.Count.ShouldBeGreaterThan(10);
        foreach (var s in syncs)
        {
            var at = s.GetProperty("requestedAt").GetDateTimeOffset();
            (at.Minute % 15, at.Second).ShouldBe((0, 0));
            (at.Minute == 0 && PointHours.Contains(at.Hour)).ShouldBeFalse($"{at:O} is a recovery-point time, which takes its own sync");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_workers is not null) await _workers.DisposeAsync();
        await _run.DisposeAsync();
    }
}
