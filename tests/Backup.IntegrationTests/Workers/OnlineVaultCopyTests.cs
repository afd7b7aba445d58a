extern alias workers;
using System.Security.Cryptography;
using Azure.Storage.Blobs;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Scheduling;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using JasperFx.Events.Daemon;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using workers::Backup.Workers.TransferringToVault;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// The real <c>vault-copy</c> subscription in a daemon of its own, on real PostgreSQL and Azurite: a group with an online
/// policy keeps its new recovery point on disk until the online backup is due, then the point is copied; a group without
/// one has it copied right away.
/// </summary>
public sealed class OnlineVaultCopyTests : IAsyncLifetime
{
    private static readonly DateTimeOffset Setup = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _schema = TestServices.NewSchema("online");
    private readonly string _container = $"vault-{Guid.NewGuid():N}";
    private readonly DirectoryInfo _disk = Directory.CreateTempSubdirectory("backup-disk-");
    private IHost _worker = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private IDocumentStore Store => _worker.Services.GetRequiredService<IDocumentStore>();

    public async ValueTask InitializeAsync()
    {
        var vault = new VaultStore(new BlobServiceClient(TestServices.Vault).GetBlobContainerClient(_container));
        await vault.EnsureCreatedAsync(Ct);
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new DiskStore(_disk.FullName));
        builder.Services.AddSingleton(vault);
        builder.Services.AddOptions<VaultCopyOptions>();
        builder.Services.AddSingleton<VaultCopier>();
        builder.Services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, _schema))
            .UseLightweightSessions()
            .ApplyAllDatabaseChangesOnStartup()
            .AddAsyncDaemon(DaemonMode.Solo)
            .AddSubscriptionWithServices<VaultCopySubscription>(ServiceLifetime.Singleton);
        _worker = builder.Build();
        await _worker.StartAsync(Ct);
    }

    private async Task<(Guid Group, Guid Source)> GroupAsync(bool online)
    {
        var groupId = Guid.CreateVersion7();
        await using var session = Store.LightweightSession();
        var created = ProtectionGroup.Create(groupId, $"group {groupId}", Setup);
        session.Events.StartStream<ProtectionGroup>(groupId, created);
        var group = ProtectionGroup.Next(null, created);
        var (toGroup, toSource) = ProtectionGroup.AddDataSource(group, groupId, Guid.CreateVersion7(), Guid.CreateVersion7(), DataSourceKind.Folder, $"/srv/{groupId:N}", Setup);
        session.Events.Append(groupId, toGroup);
        session.Events.StartStream<DataSource>(toSource.DataSourceId, toSource);
        group = ProtectionGroup.Next(group, toGroup);
        var shortTerm = ProtectionGroup.SetShortTermPolicy(group, groupId,
            new ShortTermPolicy(5, SynchronisationMode.JustBeforeRecoveryPoint, null, [new TimeOnly(20, 0)], Enum.GetValues<DayOfWeek>(), "UTC"), Setup);
        session.Events.Append(groupId, shortTerm);
        group = ProtectionGroup.Next(group, shortTerm);
        if (online)
            session.Events.Append(groupId, ProtectionGroup.SetOnlinePolicy(group, groupId,
                new OnlinePolicy([new TimeOnly(22, 0)], OnlineSchedule.Daily, [], new GfsRetention(7, null, null, null)), Setup));
        await session.SaveChangesAsync(Ct);
        return (groupId, toSource.DataSourceId);
    }

    /// <summary>A recovery point with one pack and its manifest on the disk store, as the API leaves it.</summary>
    private async Task<Guid> CreatedAsync((Guid Group, Guid Source) g)
    {
        var disk = _worker.Services.GetRequiredService<DiskStore>();
        var pack = TestPacks.Random(64 << 10);
        var (bytes, packId) = (pack.Bytes, pack.Id);
        await disk.PutPackAsync(packId, new MemoryStream(bytes), long.MaxValue, Ct);
        var id = Guid.CreateVersion7();
        await disk.PutManifestAsync(id, "{\"formatVersion\":2}"u8.ToArray(), Ct);
        var agent = Guid.CreateVersion7();
        var now = DateTimeOffset.UtcNow;
        await using var session = Store.LightweightSession();
        session.Events.StartStream<RecoveryPoint>(id,
            new BackupRequested(id, g.Source, g.Group, agent, "/srv", "operator", now),
            new BackupStarted(id, agent, now),
            new RecoveryPointCreated(id, g.Source, 1, 0, 0, bytes.Length, bytes.Length, [packId], new string('0', 64), now));
        await session.SaveChangesAsync(Ct);
        return id;
    }

    private async Task<bool> InVaultAsync(Guid recoveryPointId)
    {
        await using var session = Store.QuerySession();
        var (transfer, _) = await Commands.Common.EventStreams.LoadAsync<VaultTransfer>(session, VaultTransfer.IdFor(recoveryPointId), VaultTransfer.Next, Ct);
        return transfer is { Completed: true };
    }

    private async Task WaitUntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, what);
            await Task.Delay(200, Ct);
        }
    }

    [Fact]
    public async Task A_recovery_point_of_a_data_source_removed_with_its_data_is_not_copied()
    {
        var doomed = await GroupAsync(online: false);
        var kept = await GroupAsync(online: false);
        await using (var session = Store.LightweightSession())
        {
            var (source, version) = await Commands.Common.EventStreams.LoadAsync<DataSource>(session, doomed.Source, DataSource.Next, Ct);
            var (removed, fromGroup) = DataSource.Remove(source, doomed.Source, DataOnRemoval.Delete, Setup);
            Commands.Common.EventStreams.AppendExpected(session, doomed.Source, version, removed);
            session.Events.Append(doomed.Group, fromGroup);
            await session.SaveChangesAsync(Ct);
        }
        // The subscription reaching a point's creation only after its data source was removed with its data (it lags, or replays).
        var deleted = await CreatedAsync(doomed);
        var copied = await CreatedAsync(kept);

        await WaitUntilAsync(() => InVaultAsync(copied), "a group without an online policy is copied right away");
        (await InVaultAsync(deleted)).ShouldBeFalse("nothing of a data source removed with its data goes to the vault");
    }

    [Fact]
    public async Task Under_an_online_policy_a_new_recovery_point_waits_for_the_online_backup_then_goes_to_the_vault()
    {
        var scheduled = await GroupAsync(online: true);
        var immediate = await GroupAsync(online: false);
        var waiting = await CreatedAsync(scheduled);
        var copied = await CreatedAsync(immediate);

        // The subscription handles events in order: once the later point is copied, the earlier one has been seen and left alone.
        await WaitUntilAsync(() => InVaultAsync(copied), "a group without an online policy is copied right away");
        (await InVaultAsync(waiting)).ShouldBeFalse();
        await using (var session = Store.QuerySession())
            (await session.Events.FetchStreamStateAsync(VaultTransfer.IdFor(waiting), Ct)).ShouldBeNull();

        // The recovery-point view (async, same daemon) must know the point before the due event asks for the latest ones.
        await WaitUntilAsync(async () =>
        {
            await using var query = Store.QuerySession();
            return await query.LoadAsync<Projections.RecoveryPoints.RecoveryPointView>(waiting, Ct) is { Status: RecoveryPointStatus.Created };
        }, "the recovery-point view catches up");
        var dueAt = DateTimeOffset.UtcNow;
        var dueId = OnlineCalendar.OnlineBackupDueId(scheduled.Group, dueAt);
        await using (var session = Store.LightweightSession())
        {
            session.Events.StartStream(dueId, new OnlineBackupDue(dueId, scheduled.Group, dueAt));
            await session.SaveChangesAsync(Ct);
        }
        await WaitUntilAsync(() => InVaultAsync(waiting), "the online backup copies the waiting point");
        var manifest = await new BlobContainerClient(TestServices.Vault, _container).GetBlobClient($"manifests/{waiting:N}.json").ExistsAsync(Ct);
        manifest.Value.ShouldBeTrue();
    }

    public async ValueTask DisposeAsync()
    {
        await _worker.StopAsync(CancellationToken.None);
        _worker.Dispose();
        await TestServices.DropSchemaAsync(_schema);
        await new BlobContainerClient(TestServices.Vault, _container).DeleteIfExistsAsync();
        _disk.Delete(recursive: true);
    }
}
