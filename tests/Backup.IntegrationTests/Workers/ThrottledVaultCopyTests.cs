extern alias workers;
using System.Net;
using System.Net.Http.Json;
using System.Net.Http.Headers;
using Azure.Storage.Blobs;
using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using Backup.UnitTests.Support;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using workers::Backup.Workers.TransferringToVault;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// The group's online throttling applied to a real copy from the API's disk store to Azurite: at 512 Kbps a 240 KB
/// recovery point takes its virtual seconds (a fake clock the test moves, so nothing waits for real), and arrives whole.
/// </summary>
public sealed class ThrottledVaultCopyTests(ApiFactory api) : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private readonly ApiClient _client = new(api.CreateClient());
    private ServiceProvider? _provider;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(Guid Rp, List<string> Packs)> RecoveryPointAsync(int kbps)
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"throttled-{Guid.NewGuid():N}");
        var request = new HttpRequestMessage(HttpMethod.Put, $"/api/protection-groups/{group}/throttling")
        {
            Content = JsonContent.Create(new { workHoursKbps = kbps, nonWorkHoursKbps = kbps, workDays = new[] { "Monday" }, workStart = "09:00", workEnd = "17:00" }),
        };
        request.Headers.IfMatch.Add(EntityTagHeaderValue.Any);
        var set = await _client.Http.SendAsync(request, Ct);
        set.StatusCode.ShouldBe(HttpStatusCode.OK, await set.Content.ReadAsStringAsync(Ct));

        var source = await _client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        var rp = await _client.RequestBackupAsync(source);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var data = TestPacks.Random(240_000);
        var tree = TestPacks.Random(100);
        await _client.UploadPackAsync(agent, rp, data);
        await _client.UploadPackAsync(agent, rp, tree);
        var commit = await _client.CommitAsync(agent, rp, new Backup.Storage.Contracts.CompleteBackupRequest(
            [tree.Chunks[0].ToString()], TestPacks.Base64(data.Chunks), 1, 0, 240_000));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        await using var session = api.Store.QuerySession();
        return (rp, (await session.LoadAsync<RecoveryPointPacks>(rp, Ct))!.Packs);
    }

    /// <summary>Copies the point to the vault on a <see cref="JumpingClock"/>; returns the seconds the copy waited for the rate.</summary>
    private async Task<double> CopyAsync(Guid rp, List<string> packs)
    {
        var clock = new JumpingClock(DateTimeOffset.Parse("2026-03-23T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var services = new ServiceCollection().AddSingleton<TimeProvider>(clock).AddLogging();
        services.AddOptions<VaultCopyOptions>();
        services.AddSingleton(new DiskStore(api.DiskStore));
        var vault = new VaultStore(new BlobContainerClient(TestServices.Vault, api.VaultContainer));
        await vault.EnsureCreatedAsync(Ct);
        services.AddSingleton(vault);
        services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, api.Schema)).UseLightweightSessions();
        services.AddSingleton<VaultCopier>();
        _provider = services.BuildServiceProvider();
        var start = clock.GetUtcNow();
        await _provider.GetRequiredService<VaultCopier>().CopyAsync(rp, packs, new CommandMetadata { Actor = "test" }, Ct);
        foreach (var pack in packs)
            (await vault.PackLengthAsync(pack, Ct)).ShouldBe(new FileInfo(Path.Combine(api.DiskStore, "packs", pack[..2], pack)).Length);
        return (clock.GetUtcNow() - start).TotalSeconds;
    }

    [Fact]
    public async Task A_copy_keeps_to_the_groups_rate_and_arrives_whole()
    {
        var (rp, packs) = await RecoveryPointAsync(kbps: 512); // 64,000 bytes a second
        var bytes = packs.Sum(p => new FileInfo(Path.Combine(api.DiskStore, "packs", p[..2], p)).Length);
        var waited = await CopyAsync(rp, packs);
        // Everything at 64,000 B/s, less the one second of burst a transfer may start with.
        waited.ShouldBeInRange(bytes / 64_000.0 - 1.05, bytes / 64_000.0);
        await _client.WaitForAsync($"/api/recovery-points/{rp}", v => v.GetProperty("tier").GetString() == "Both");
    }

    [Fact]
    public async Task A_fast_rate_does_not_hold_the_copy_back()
    {
        var (rp, packs) = await RecoveryPointAsync(kbps: 1023 * 1024);
        (await CopyAsync(rp, packs)).ShouldBeLessThan(0.01);
    }

    public async ValueTask DisposeAsync()
    {
        if (_provider is not null) await _provider.DisposeAsync();
    }
}
