extern alias workers;
using System.Net;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using JasperFx.Events.Daemon;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using workers::Backup.Workers.Checking;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// The automatic consistency check, as the workers run it (the <c>consistency-repair</c> subscription in a daemon of its
/// own): an operator's check that finds a damaged disk copy is followed, without anyone asking, by a repair from the vault.
/// </summary>
public sealed class ConsistencyRepairSubscriptionTests(ApiFactory api) : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private readonly ApiClient _client = new(api.CreateClient());
    private IHost? _workers;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Workers as in production: their daemon runs the projections and the subscription. The API host's daemon is paused
    /// first, since two daemons on one schema race to write the same progress rows.
    /// </summary>
    private async Task StartWorkersAsync()
    {
        await api.Services.GetRequiredService<Marten.Events.Daemon.Coordination.IProjectionCoordinator>().PauseAsync();
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(api.Services.GetRequiredService<DiskStore>());
        builder.Services.AddSingleton(api.Services.GetRequiredService<VaultStore>());
        builder.Services.AddOptions<ConsistencyCheckOptions>();
        builder.Services.AddSingleton<ConsistencyChecker>();
        builder.Services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, api.Schema))
            .UseLightweightSessions()
            .AddAsyncDaemon(DaemonMode.Solo)
            .AddSubscriptionWithServices<ConsistencyRepairSubscription>(ServiceLifetime.Singleton);
        _workers = builder.Build();
        await _workers.StartAsync(Ct);
    }

    [Fact]
    public async Task A_check_that_finds_a_damaged_disk_copy_is_followed_by_its_repair_from_the_vault()
    {
        await api.Services.GetRequiredService<VaultStore>().EnsureCreatedAsync(Ct);
        var backup = await _client.CreatedBackupAsync();
        await api.CopyToVaultAsync(backup.RecoveryPointId);
        await StartWorkersAsync();
        var disk = api.Services.GetRequiredService<DiskStore>();
        var pack = backup.Packs[1];
        await using (var file = File.Open(disk.PackPath(pack.Id), FileMode.Open, FileAccess.ReadWrite))
        {
            // Flip the byte's bits: writing a fixed value left the pack intact whenever the byte already had it (1 in 256).
            file.Position = 10;
            var original = (byte)file.ReadByte();
            file.Position = 10;
            file.WriteByte((byte)(original ^ 0xFF));
        }

        var check = await _client.Http.PostAsync($"/api/recovery-points/{backup.RecoveryPointId}/check?tier=Disk", null, Ct);
        check.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await check.Content.ReadAsStringAsync(Ct)).ShouldContain(pack.Id); // the operator's check found it

        // The worker's repair is recorded once it is done (the file is replaced first, then the outcome appended).
        var deadline = DateTime.UtcNow.AddSeconds(60);
        List<ConsistencyCheckCompleted> outcomes;
        while (true)
        {
            await using var session = api.Store.QuerySession();
            outcomes = [.. (await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "consistency_check_completed.v1").ToListAsync(Ct))
                .Select(e => e.Data).OfType<ConsistencyCheckCompleted>()];
            if (outcomes.Count > 0) break;
            DateTime.UtcNow.ShouldBeLessThan(deadline, "no consistency check followed the damaged copy");
            await Task.Delay(200, Ct);
        }
        (await File.ReadAllBytesAsync(disk.PackPath(pack.Id), Ct)).ShouldBe(pack.Bytes);
        var outcome = outcomes.ShouldHaveSingleItem();
        outcome.Reason.ShouldContain("found by user:");
        outcome.Repaired.ShouldBe([new PackRepaired(pack.Id, Commands.RecoveryPoints.StorageTier.Disk, Commands.RecoveryPoints.StorageTier.Vault)]);
    }

    public async ValueTask DisposeAsync()
    {
        if (_workers is null) return;
        await _workers.StopAsync(CancellationToken.None);
        _workers.Dispose();
        await api.Services.GetRequiredService<Marten.Events.Daemon.Coordination.IProjectionCoordinator>().ResumeAsync();
    }
}
