extern alias workers;
using System.Security.Cryptography;
using Azure;
using Azure.Storage.Blobs;
using Backup.Commands.Common;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using workers::Backup.Workers.TransferringToVault;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// The online copy survives the vault going away in the middle of an upload: the interruption is recorded,
/// and the next attempt resumes at the first pack the vault lacks without sending the others again.
/// </summary>
public sealed class VaultCopyResumeTests : IAsyncLifetime
{
    private const int Packs = 16;
    private readonly string _schema = TestServices.NewSchema("vault");
    private readonly DirectoryInfo _disk = Directory.CreateTempSubdirectory("backup-disk-");
    private readonly PrivateAzurite _azurite = new();
    private DocumentStore _store = null!;

    private static readonly CommandMetadata Worker = new() { Actor = "worker:vault-copy", CorrelationId = "resume-test" };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _store = DocumentStore.For(o => o.ConfigureCatalog(TestServices.Postgres, _schema));
        await _store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
        await _azurite.StartAsync();
    }

    private VaultStore Vault()
    {
        // No SDK-level retries: the copier's own retry policy is what is under test.
        var options = new BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(5) } };
        return new VaultStore(new BlobServiceClient(_azurite.ConnectionString, options).GetBlobContainerClient("vault"));
    }

    private VaultCopier Copier(DiskStore disk, VaultStore vault)
    {
        var services = new ServiceCollection().AddSingleton<IDocumentStore>(_store).BuildServiceProvider();
        var options = Options.Create(new VaultCopyOptions { RetryAttempts = 1, RetryDelay = TimeSpan.FromMilliseconds(50), MaxRetryDelay = TimeSpan.FromMilliseconds(100) });
        return new VaultCopier(services, disk, vault, TimeProvider.System, options, NullLogger<VaultCopier>.Instance);
    }

    private async Task<IReadOnlyList<IEvent>> TransferEventsAsync(Guid recoveryPointId)
    {
        await using var session = _store.QuerySession();
        return await session.Events.FetchStreamAsync(VaultTransfer.IdFor(recoveryPointId), token: Ct);
    }

    [Fact]
    public async Task A_copy_cut_off_by_a_vault_outage_resumes_where_it_stopped()
    {
        var disk = new DiskStore(_disk.FullName);
        var packIds = new List<string>();
        for (var i = 0; i < Packs; i++)
        {
            var pack = TestPacks.Random(2 << 20);
            await disk.PutPackAsync(pack.Id, new MemoryStream(pack.Bytes), long.MaxValue, Ct);
            packIds.Add(pack.Id);
        }
        var recoveryPointId = Guid.CreateVersion7();
        await disk.PutManifestAsync(recoveryPointId, "{\"formatVersion\":2}"u8.ToArray(), Ct);

        var vault = Vault();
        await vault.EnsureCreatedAsync(Ct);
        var copy = Copier(disk, vault).CopyAsync(recoveryPointId, packIds, Worker, Ct);

        // Pull the plug as soon as the first pack is recorded in the vault.
        while (!copy.IsCompleted && (await TransferEventsAsync(recoveryPointId)).OfType<IEvent>().All(e => e.Data is not PackUploadedToVault))
            await Task.Delay(5, Ct);
        await _azurite.StopAsync();
        await Should.ThrowAsync<Exception>(() => copy);

        var interrupted = await TransferEventsAsync(recoveryPointId);
        interrupted.Last().Data.ShouldBeOfType<VaultTransferFailed>().Reason.ShouldNotBeNullOrWhiteSpace();
        var uploadedBefore = interrupted.Select(e => e.Data).OfType<PackUploadedToVault>().Select(u => u.PackId).ToList();
        uploadedBefore.Count.ShouldBeInRange(1, Packs - 1, "the outage must hit the middle of the copy");

        await _azurite.StartAsync(); // same data directory: what was uploaded is still there
        var etagsBefore = new Dictionary<string, ETag>();
        foreach (var id in uploadedBefore)
            etagsBefore[id] = (await vault.Container.GetBlobClient($"packs/{id}").GetPropertiesAsync(cancellationToken: Ct)).Value.ETag;

        await Copier(disk, vault).CopyAsync(recoveryPointId, packIds, Worker, Ct);

        var events = (await TransferEventsAsync(recoveryPointId)).Select(e => e.Data).ToList();
        events.Last().ShouldBeOfType<VaultTransferCompleted>().PackCount.ShouldBe(Packs);
        events.OfType<PackUploadedToVault>().Select(u => u.PackId).ShouldBe(packIds, ignoreOrder: true, "each pack is recorded once");
        foreach (var id in uploadedBefore)
        {
            var blob = vault.Container.GetBlobClient($"packs/{id}");
            (await blob.GetPropertiesAsync(cancellationToken: Ct)).Value.ETag.ShouldBe(etagsBefore[id], $"pack {id} was uploaded again");
        }
        foreach (var id in packIds)
        {
            var content = (await vault.Container.GetBlobClient($"packs/{id}").DownloadContentAsync(Ct)).Value.Content.ToArray();
            Convert.ToHexStringLower(SHA256.HashData(content)).ShouldBe(id);
        }
        (await vault.ReadManifestAsync(recoveryPointId, Ct)).ShouldNotBeNull();
    }

    [Fact]
    public async Task Two_copiers_that_overlap_on_one_point_record_each_pack_and_the_completion_once()
    {
        // A leader that lost its lock, or was told to stop, may still be copying when the next leader starts the same copy.
        var disk = new DiskStore(_disk.FullName);
        var packIds = new List<string>();
        for (var i = 0; i < 24; i++)
        {
            var pack = TestPacks.Random(1 << 20);
            await disk.PutPackAsync(pack.Id, new MemoryStream(pack.Bytes), long.MaxValue, Ct);
            packIds.Add(pack.Id);
        }
        var recoveryPointId = Guid.CreateVersion7();
        await disk.PutManifestAsync(recoveryPointId, "{\"formatVersion\":2}"u8.ToArray(), Ct);
        var vault = Vault();
        await vault.EnsureCreatedAsync(Ct);

        var first = Copier(disk, vault).CopyAsync(recoveryPointId, packIds, Worker, Ct);
        while (!first.IsCompleted && (await TransferEventsAsync(recoveryPointId)).All(e => e.Data is not PackUploadedToVault))
            await Task.Delay(5, Ct);
        var second = Copier(disk, vault).CopyAsync(recoveryPointId, packIds, Worker, Ct);
        await Task.WhenAll(first, second);

        var events = (await TransferEventsAsync(recoveryPointId)).Select(e => e.Data).ToList();
        events.OfType<VaultTransferStarted>().Count().ShouldBe(2, "the second copier started while the first was copying");
        events.OfType<PackUploadedToVault>().Select(u => u.PackId).ShouldBe(packIds, ignoreOrder: true, "each pack is recorded once");
        events.OfType<VaultTransferCompleted>().ShouldHaveSingleItem().PackCount.ShouldBe(packIds.Count);
        events.OfType<VaultTransferFailed>().ShouldBeEmpty();
    }

    public async ValueTask DisposeAsync()
    {
        await _store.DisposeAsync();
        await _azurite.DisposeAsync();
        await TestServices.DropSchemaAsync(_schema);
        _disk.Delete(recursive: true);
    }
}
