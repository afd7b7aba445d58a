using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Storage.Contracts;
using Marten;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// Real worker processes copying a recovery point to the vault (Azurite) while they are stopped: gracefully (SIGTERM) or
/// killed outright (<c>kill -9</c>). The copy is throttled by its group to the lowest rate (over a minute and a half for
/// the point), so it is still under way when the worker goes; the throttle is then lifted, and since a copy reads it when
/// it starts, the worker that resumes the copy goes at full speed.
/// Whatever the worker recorded as done stays done exactly once: each pack is recorded once, no pack recorded as in the
/// vault is sent again, and the recovery point is completed once, by the next worker.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class WorkerShutdownTests : IAsyncLifetime
{
    private const int Packs = 24;
    private const int PackBytes = 256 << 10;
    private readonly string _schema = TestServices.NewSchema("shutdown");
    private readonly string _container = $"vault-{Guid.NewGuid():N}";
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("backup-shutdown-");
    private readonly string _adminKey = $"shutdown-admin-{Guid.NewGuid():N}";
    private readonly List<ProductProcess> _processes = [];
    private ApiClient _client = null!;
    private DocumentStore _store = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private BlobContainerClient Vault => new(TestServices.Vault, _container);

    private Dictionary<string, string> Environment() => new()
    {
        ["ConnectionStrings__Marten"] = TestServices.Postgres,
        ["ConnectionStrings__Vault"] = TestServices.Vault,
        ["Backup__Schema"] = _schema,
        ["Backup__DiskStore"] = Path.Combine(_work.FullName, "disk-store"),
        ["Backup__VaultContainer"] = _container,
        ["Backup__BootstrapAdminKey"] = _adminKey,
        ["Logging__LogLevel__Default"] = "Information",
    };

    public async ValueTask InitializeAsync()
    {
        var (api, baseUrl) = await ProductProcess.StartApiAsync(Environment(), Ct);
        _processes.Add(api);
        _client = new ApiClient(new HttpClient { BaseAddress = new Uri(baseUrl), DefaultRequestHeaders = { Authorization = new("ApiKey", _adminKey) } });
        _store = DocumentStore.For(o => o.ConfigureCatalog(TestServices.Postgres, _schema));
    }

    private ProductProcess StartWorker()
    {
        var worker = ProductProcess.Start("Backup.Workers", Environment());
        _processes.Add(worker);
        return worker;
    }

    /// <summary>The group's online throttling, the same rate at all hours.</summary>
    private async Task ThrottleAsync(Guid group, int kbps)
    {
        var throttle = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{group}/throttling")
        {
            Content = JsonContent.Create(new { workHoursKbps = kbps, nonWorkHoursKbps = kbps, workDays = new[] { "Monday" }, workStart = "09:00", workEnd = "17:00" }),
        };
        throttle.Headers.IfMatch.Add(EntityTagHeaderValue.Any);
        var set = await _client.Http.SendAsync(throttle, Ct);
        set.StatusCode.ShouldBe(HttpStatusCode.OK, await set.Content.ReadAsStringAsync(Ct));
    }

    /// <summary>A created recovery point of <see cref="Packs"/> random packs in a group throttled to the lowest rate, taken over the agent protocol.</summary>
    private async Task<(Guid Group, Guid RecoveryPoint, List<TestPack> Packs)> ThrottledRecoveryPointAsync()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync("Throttled");
        await ThrottleAsync(group, PolicyLimits.MinKbps); // 64 KB/s: 4 s a pack
        var source = await _client.AddFolderAsync(group, agent.AgentId, "/srv/data");
        var rp = await _client.RequestBackupAsync(source);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var packs = Enumerable.Range(0, Packs).Select(_ => TestPacks.Random(PackBytes)).ToList();
        foreach (var pack in packs) await _client.UploadPackAsync(agent, rp, pack);
        var commit = await _client.CommitAsync(agent, rp, new CompleteBackupRequest(
            [packs[^1].Chunks[0].ToString()], TestPacks.Base64(packs.SelectMany(p => p.Chunks)), Packs, 0, (long)Packs * PackBytes));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        return (group, rp, packs);
    }

    private async Task<List<object>> TransferAsync(Guid rp)
    {
        await using var session = _store.QuerySession();
        return [.. (await session.Events.FetchStreamAsync(VaultTransfer.IdFor(rp), token: Ct)).Select(e => e.Data)];
    }

    private async Task<List<object>> WaitForTransferAsync(Guid rp, Func<List<object>, bool> done, params ProductProcess[] workers)
    {
        var deadline = DateTime.UtcNow.AddSeconds(180);
        while (true)
        {
            var events = await TransferAsync(rp);
            if (done(events)) return events;
            if (DateTime.UtcNow > deadline || workers.All(w => w.HasExited))
                throw new TimeoutException($"The copy of {rp} never got there: {string.Join(", ", events.Select(e => e.GetType().Name))}\n"
                    + string.Join("\n----\n", workers.Select(w => w.Output)));
            await Task.Delay(100, Ct);
        }
    }

    private static List<string> Recorded(List<object> events) => [.. events.OfType<PackUploadedToVault>().Select(u => u.PackId)];

    /// <summary>The ETag of each pack blob: a pack sent again gets a new one.</summary>
    private async Task<Dictionary<string, ETag>> ETagsAsync(IEnumerable<string> packIds)
    {
        var etags = new Dictionary<string, ETag>();
        foreach (var id in packIds)
            etags[id] = (await Vault.GetBlobClient($"packs/{id}").GetPropertiesAsync(cancellationToken: Ct)).Value.ETag;
        return etags;
    }

    /// <summary>What every interrupted copy must end as, once a worker has finished it.</summary>
    private async Task ShouldBeCopiedOnceAsync(Guid rp, List<TestPack> packs, Dictionary<string, ETag> recordedBefore, List<object> events)
    {
        Recorded(events).ShouldBe(packs.Select(p => p.Id), ignoreOrder: true, "each pack is recorded once");
        events.OfType<VaultTransferCompleted>().ShouldHaveSingleItem().PackCount.ShouldBe(Packs);
        events.OfType<VaultTransferStarted>().Count().ShouldBe(2, "the first worker's attempt and the one that finished it");
        events.OfType<VaultTransferFailed>().ShouldBeEmpty("an interrupted copy is not a failed one");
        (await ETagsAsync(recordedBefore.Keys)).ShouldBe(recordedBefore, "a pack recorded as in the vault was sent again");
        foreach (var pack in packs)
        {
            var content = (await Vault.GetBlobClient($"packs/{pack.Id}").DownloadContentAsync(Ct)).Value.Content.ToArray();
            Convert.ToHexStringLower(SHA256.HashData(content)).ShouldBe(pack.Id);
        }
        (await Vault.GetBlobClient($"manifests/{rp:N}.json").ExistsAsync(Ct)).Value.ShouldBeTrue();
        var point = await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("tier").GetString() == "Both", TimeSpan.FromSeconds(60));
        point.GetProperty("status").GetString().ShouldBe("Created");
        var job = await _client.WaitForAsync($"/api/jobs/{VaultTransfer.IdFor(rp)}", j => j.GetProperty("state").GetString() == "Succeeded", TimeSpan.FromSeconds(60));
        job.GetProperty("attempts").GetInt32().ShouldBe(2);
    }

    [Fact]
    public async Task A_worker_stopped_mid_copy_stops_at_once_and_its_restart_finishes_the_copy_without_resending()
    {
        var (group, rp, packs) = await ThrottledRecoveryPointAsync();
        var worker = StartWorker();
        await WaitForTransferAsync(rp, events => Recorded(events).Count > 0, worker);

        await worker.TerminateAsync();
        (await worker.ExitCodeAsync(TimeSpan.FromSeconds(120))).ShouldBe(0, "a stopped worker shuts down cleanly:\n" + worker.Output);

        // It stopped in the middle instead of finishing a copy that needs half a minute, and recorded nothing false.
        var stopped = await TransferAsync(rp);
        Recorded(stopped).Count.ShouldBeInRange(1, Packs - 1, "the worker should have stopped mid-copy:\n" + worker.Output);
        Recorded(stopped).ShouldBeUnique();
        stopped.OfType<VaultTransferCompleted>().ShouldBeEmpty();
        stopped.OfType<VaultTransferFailed>().ShouldBeEmpty("a stop is not a failure");
        var recordedBefore = await ETagsAsync(Recorded(stopped));

        await ThrottleAsync(group, PolicyLimits.MaxKbps);
        var restarted = StartWorker();
        var done = await WaitForTransferAsync(rp, events => events.OfType<VaultTransferCompleted>().Any(), restarted);

        await ShouldBeCopiedOnceAsync(rp, packs, recordedBefore, done);
    }

    [Fact]
    public async Task A_worker_killed_mid_copy_is_taken_over_by_the_other_worker_which_resumes_at_the_next_pack()
    {
        var (group, rp, packs) = await ThrottledRecoveryPointAsync();
        var first = StartWorker();
        await WaitForTransferAsync(rp, events => events.OfType<VaultTransferStarted>().Any(), first);

        // The second worker runs beside the first one, which holds the daemon's leadership and so the copy.
        var second = StartWorker();
        await second.WaitForOutputAsync("Application started", TimeSpan.FromSeconds(120));
        var before = await WaitForTransferAsync(rp, events => Recorded(events).Count > 0, first);
        var recordedBefore = await ETagsAsync(Recorded(before));

        await ThrottleAsync(group, PolicyLimits.MaxKbps);
        await first.KillAsync();
        var killedAt = await TransferAsync(rp);
        Recorded(killedAt).Count.ShouldBeLessThan(Packs, "the first worker should have been killed mid-copy");
        killedAt.OfType<VaultTransferCompleted>().ShouldBeEmpty();

        var done = await WaitForTransferAsync(rp, events => events.OfType<VaultTransferCompleted>().Any(), second);

        await ShouldBeCopiedOnceAsync(rp, packs, recordedBefore, done);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        await _store.DisposeAsync();
        await TestServices.DropSchemaAsync(_schema);
        await Vault.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
        _work.Delete(recursive: true);
    }
}
