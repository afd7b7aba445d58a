extern alias workers;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Azure.Storage.Blobs;
using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Storage.Contracts;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using workers::Backup.Workers.CollectingGarbage;
using workers::Backup.Workers.TransferringToVault;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// Garbage collection of packs on real PostgreSQL, the API's real disk store and Azurite: what no kept recovery point needs
/// goes, on both tiers, and nothing a live or a new recovery point needs ever does — also while backups run alongside.
/// Recovery points here are made through the agent protocol with real packs; "sound" is the server's own consistency check.
/// </summary>
public sealed class PackCollectionTests(ApiFactory api) : IClassFixture<ApiFactory>, IAsyncDisposable
{
    private readonly ApiClient _client = new(api.CreateClient());
    private readonly List<ServiceProvider> _providers = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private ServiceProvider Workers()
    {
        var services = new ServiceCollection().AddSingleton(TimeProvider.System).AddLogging();
        services.AddOptions<PackCollectionOptions>().Configure(o => o.MinPackAge = TimeSpan.Zero);
        services.AddOptions<VaultCopyOptions>();
        services.AddSingleton(new DiskStore(api.DiskStore));
        services.AddSingleton(new VaultStore(new BlobContainerClient(TestServices.Vault, api.VaultContainer)));
        services.AddMarten(o => o.ConfigureCatalog(TestServices.Postgres, api.Schema)).UseLightweightSessions();
        services.AddSingleton<PackCollector>();
        services.AddSingleton<VaultCopier>();
        var provider = services.BuildServiceProvider();
        _providers.Add(provider);
        return provider;
    }

    private PackCollector Collector() => Workers().GetRequiredService<PackCollector>();

    private Task<CollectionRound> RoundAsync(PackCollector collector) => collector.CollectAsync(DateTimeOffset.UtcNow, Ct);

    private sealed record Source(EnrolAgentResponse Agent, Guid DataSource);

    private async Task<Source> SourceAsync()
    {
        var agent = await _client.EnrolAsync();
        var dataSource = await _client.AddFolderAsync(await _client.CreateGroupAsync($"gc-{Guid.NewGuid():N}"), agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        return new Source(agent, dataSource);
    }

    /// <summary>A backup claimed by its agent and running, nothing uploaded yet.</summary>
    private async Task<Guid> StartAsync(Source source)
    {
        var rp = await _client.RequestBackupAsync(source.DataSource);
        (await _client.PollAsync(source.Agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        return rp;
    }

    /// <summary>Uploads <paramref name="packs"/> plus a tree pack and commits chunks <paramref name="references"/> (and the tree).</summary>
    private async Task<HttpResponseMessage> FinishAsync(Source source, Guid rp, IEnumerable<TestPack> packs, IEnumerable<Backup.Storage.Crypto.ChunkId> references)
    {
        foreach (var pack in packs) await _client.UploadPackAsync(source.Agent, rp, pack);
        var tree = TestPacks.Random(200);
        await _client.UploadPackAsync(source.Agent, rp, tree);
        return await _client.CommitAsync(source.Agent, rp, new CompleteBackupRequest(
            [tree.Chunks[0].ToString()], TestPacks.Base64(references), Files: 1, Directories: 0, BytesRead: 1));
    }

    private async Task<Guid> BackupAsync(Source source, IEnumerable<TestPack> packs, IEnumerable<Backup.Storage.Crypto.ChunkId> references)
    {
        var rp = await StartAsync(source);
        var commit = await FinishAsync(source, rp, packs, references);
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        return rp;
    }

    private async Task ExpireAsync(Guid rp, params StorageTier[] tiers)
    {
        await using var session = api.Store.LightweightSession();
        foreach (var tier in tiers)
            session.Events.Append(rp, new RecoveryPointExpired(rp, tier, "test: policy no longer keeps it", DateTimeOffset.UtcNow));
        await session.SaveChangesAsync(Ct);
    }

    private async Task<List<string>> PacksOfAsync(Guid rp)
    {
        await using var session = api.Store.QuerySession();
        return (await session.LoadAsync<RecoveryPointPacks>(rp, Ct))!.Packs;
    }

    private async Task<JsonElement> CheckAsync(Guid rp, string tier = "Disk")
    {
        var response = await _client.Http.PostAsync($"/api/recovery-points/{rp}/check?tier={tier}", null, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));
        return await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
    }

    private async Task ShouldBeSoundAsync(Guid rp, string tier = "Disk")
    {
        var outcome = await CheckAsync(rp, tier);
        outcome.GetProperty("damaged").GetArrayLength().ShouldBe(0, $"{tier} copy of {rp}: {outcome}");
    }

    private bool OnDisk(string packId) => File.Exists(Path.Combine(api.DiskStore, "packs", packId[..2], packId));

    [Fact]
    public async Task A_pack_only_an_expired_point_held_is_condemned_then_deleted_while_shared_packs_stay_and_the_live_point_checks_sound()
    {
        var source = await SourceAsync();
        var shared = TestPacks.Build(RandomNumberGenerator.GetBytes(3000), RandomNumberGenerator.GetBytes(2000));
        var only = TestPacks.Random(4000);
        var old = await BackupAsync(source, [shared, only], [.. shared.Chunks, .. only.Chunks]);
        var fresh = TestPacks.Random(1000);
        var live = await BackupAsync(source, [fresh], [shared.Chunks[0], .. fresh.Chunks]);
        var oldPacks = await PacksOfAsync(old);
        var livePacks = await PacksOfAsync(live);
        var oldOnly = oldPacks.Except(livePacks).ToList(); // the expired point's own packs: its data pack and tree
        oldOnly.ShouldContain(only.Id);
        oldOnly.Count.ShouldBe(2);
        await ExpireAsync(old, StorageTier.Disk, StorageTier.Vault);

        var collector = Collector();
        var first = await RoundAsync(collector);
        // Rounds collect the whole store (other tests of this fixture leave garbage too): judged by this test's packs.
        oldOnly.ShouldAllBe(p => first.CondemnedOnDisk.Contains(p));
        livePacks.ShouldAllBe(p => !first.CondemnedOnDisk.Contains(p));
        oldOnly.ShouldAllBe(p => !first.DeletedFromDisk.Contains(p));
        oldOnly.ShouldAllBe(p => OnDisk(p)); // condemned, not gone yet
        var known = await _client.KnownChunksAsync(source.Agent);
        known.ShouldNotContain(only.Chunks[0]); // no longer offered to agents
        known.ShouldContain(shared.Chunks[0]);

        var second = await RoundAsync(collector);
        oldOnly.ShouldAllBe(p => second.DeletedFromDisk.Contains(p));
        livePacks.ShouldAllBe(p => !second.DeletedFromDisk.Contains(p));
        oldOnly.ShouldAllBe(p => !OnDisk(p));
        livePacks.ShouldAllBe(p => OnDisk(p));
        File.Exists(Path.Combine(api.DiskStore, "manifests", $"{old:N}.json")).ShouldBeFalse();
        await ShouldBeSoundAsync(live);

        var third = await RoundAsync(collector);
        livePacks.Concat(oldOnly).ShouldAllBe(p => !third.CondemnedOnDisk.Contains(p)); // nothing of ours left to take
        await using var session = api.Store.QuerySession();
        var events = await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "packs_deleted.v1").ToListAsync(Ct);
        var recorded = events.Select(e => e.Data).OfType<PacksDeleted>().Where(d => d.Tier == StorageTier.Disk).SelectMany(d => d.PackIds).ToList();
        oldOnly.ShouldAllBe(p => recorded.Contains(p)); // every deletion is recorded (other tests of this fixture record theirs too)
        livePacks.ShouldAllBe(p => !recorded.Contains(p));
    }

    /// <summary>A synchronisation claimed by the agent, <paramref name="packs"/> uploaded to it, and (unless null) ended referencing <paramref name="references"/> and its tree.</summary>
    private async Task<(Guid Sync, TestPack Tree)> SyncAsync(Source source, IEnumerable<TestPack> packs, IEnumerable<Backup.Storage.Crypto.ChunkId>? references)
    {
        var sync = await _client.RequestSyncAsync(source.DataSource);
        var claim = await _client.PollAsync(source.Agent);
        claim.StatusCode.ShouldBe(HttpStatusCode.OK);
        var job = (await claim.Content.ReadFromJsonAsync<AgentJob>(Backup.Storage.Format.Manifest.Json, Ct))!;
        job.Kind.ShouldBe(JobKind.Synchronisation);
        job.JobId.ShouldBe(sync);
        foreach (var pack in packs) await _client.UploadPackAsync(source.Agent, sync, pack, "syncs");
        var tree = TestPacks.Random(200);
        if (references is null) return (sync, tree);
        await _client.UploadPackAsync(source.Agent, sync, tree, "syncs");
        var end = await _client.CommitAsync(source.Agent, sync, new CompleteBackupRequest(
            [tree.Chunks[0].ToString()], TestPacks.Base64(references), Files: 1, Directories: 0, BytesRead: 1), "syncs");
        end.StatusCode.ShouldBe(HttpStatusCode.NoContent, await end.Content.ReadAsStringAsync(Ct));
        return (sync, tree);
    }

    [Fact]
    public async Task The_latest_synchronisations_packs_are_kept_until_a_recovery_point_taken_after_it_exists()
    {
        var source = await SourceAsync();
        var (a, b, c) = (TestPacks.Random(3000), TestPacks.Random(2000), TestPacks.Random(1000));
        var (first, firstTree) = await SyncAsync(source, [a, b], [.. a.Chunks, .. b.Chunks]);
        var collector = Collector();
        var round = await RoundAsync(collector);
        new[] { a.Id, b.Id, firstTree.Id }.ShouldAllBe(p => !round.CondemnedOnDisk.Contains(p), "no recovery point references them, but the next one will");

        // A second synchronisation, still running: what it wrote stays. Once it ends it is the latest: what only the first
        // one referenced (b, its tree) may go, what the second references stays.
        var (second, secondTree) = await SyncAsync(source, [c], references: null);
        round = await RoundAsync(collector);
        new[] { a.Id, b.Id, c.Id, firstTree.Id }.ShouldAllBe(p => !round.CondemnedOnDisk.Contains(p));
        await _client.UploadPackAsync(source.Agent, second, secondTree, "syncs");
        var end = await _client.CommitAsync(source.Agent, second, new CompleteBackupRequest(
            [secondTree.Chunks[0].ToString()], TestPacks.Base64([.. a.Chunks, .. c.Chunks]), Files: 1, Directories: 0, BytesRead: 1), "syncs");
        end.StatusCode.ShouldBe(HttpStatusCode.NoContent, await end.Content.ReadAsStringAsync(Ct));
        round = await RoundAsync(collector);
        round.CondemnedOnDisk.ShouldContain(b.Id);
        round.CondemnedOnDisk.ShouldContain(firstTree.Id);
        await using (var session = api.Store.QuerySession())
            (await session.LoadAsync<SyncPacks>(first, Ct)).ShouldBeNull("a superseded synchronisation's record goes with the round");
        new[] { a.Id, c.Id, secondTree.Id }.ShouldAllBe(p => !round.CondemnedOnDisk.Contains(p));
        (await _client.KnownChunksAsync(source.Agent)).ShouldContain(c.Chunks[0], "the synchronised chunks are still offered to the agent");

        // A recovery point after it, referencing a (as an agent's next backup reuses what the sync sent): c is no longer needed.
        var rp = await BackupAsync(source, [], [.. a.Chunks]);
        round = await RoundAsync(collector);
        round.CondemnedOnDisk.ShouldContain(c.Id);
        round.CondemnedOnDisk.ShouldContain(secondTree.Id);
        round.CondemnedOnDisk.ShouldNotContain(a.Id);
        await ShouldBeSoundAsync(rp);
    }

    [Fact]
    public async Task Packs_of_a_data_source_removed_with_delete_data_are_reclaimed_and_another_sources_stay()
    {
        var gone = await SourceAsync();
        var kept = await SourceAsync();
        var doomed = TestPacks.Random(3000);
        var deletedPoint = await BackupAsync(gone, [doomed], doomed.Chunks);
        var other = TestPacks.Random(3000);
        var livePoint = await BackupAsync(kept, [other], other.Chunks);
        var doomedPacks = await PacksOfAsync(deletedPoint);

        var request = new HttpRequestMessage(HttpMethod.Delete, $"/api/data-sources/{gone.DataSource}?data=delete");
        request.Headers.Add("X-Security-Pin", await _client.PinAsync());
        var removed = await _client.Http.SendAsync(request, Ct);
        removed.StatusCode.ShouldBe(HttpStatusCode.OK, await removed.Content.ReadAsStringAsync(Ct));

        var collector = Collector();
        var condemned = (await RoundAsync(collector)).CondemnedOnDisk;
        doomedPacks.ShouldAllBe(p => condemned.Contains(p));
        var deleted = (await RoundAsync(collector)).DeletedFromDisk;
        doomedPacks.ShouldAllBe(p => deleted.Contains(p));
        doomedPacks.ShouldAllBe(p => !OnDisk(p));
        (await PacksOfAsync(livePoint)).ShouldAllBe(p => OnDisk(p));
        await ShouldBeSoundAsync(livePoint);
    }

    [Fact]
    public async Task A_backup_running_during_the_condemnation_delays_the_deletion_and_keeps_the_condemned_pack_it_commits()
    {
        var source = await SourceAsync();
        var data = TestPacks.Random(5000);
        var old = await BackupAsync(source, [data], data.Chunks);
        await ExpireAsync(old, StorageTier.Disk, StorageTier.Vault);
        var running = await StartAsync(source); // it was told the old chunk is known and will not upload it again

        var collector = Collector();
        (await RoundAsync(collector)).CondemnedOnDisk.ShouldContain(data.Id);
        var waiting = await RoundAsync(collector);
        waiting.DeletedFromDisk.ShouldNotContain(data.Id); // the running backup may still need it
        OnDisk(data.Id).ShouldBeTrue();

        var commit = await FinishAsync(source, running, [], data.Chunks);
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        var after = await RoundAsync(collector);
        after.KeptOnDisk.ShouldContain(data.Id);
        after.DeletedFromDisk.ShouldNotContain(data.Id);
        OnDisk(data.Id).ShouldBeTrue();
        await ShouldBeSoundAsync(running);
    }

    [Fact]
    public async Task A_pack_holding_chunks_uploaded_again_after_condemnation_is_kept()
    {
        var source = await SourceAsync();
        var chunk = RandomNumberGenerator.GetBytes(6000);
        var first = TestPacks.Build(chunk);
        var old = await BackupAsync(source, [first], first.Chunks);
        await ExpireAsync(old, StorageTier.Disk, StorageTier.Vault);
        var collector = Collector();
        (await RoundAsync(collector)).CondemnedOnDisk.ShouldContain(first.Id);

        // A backup starting now is not told the chunk is known, so it sends it again in a pack of its own; the index keeps
        // the chunk where it was, so that pack is needed again.
        var again = TestPacks.Build(chunk);
        again.Chunks.ShouldBe(first.Chunks);
        var rp = await BackupAsync(source, [again], again.Chunks);
        var round = await RoundAsync(collector);
        round.KeptOnDisk.ShouldContain(first.Id);
        OnDisk(first.Id).ShouldBeTrue();
        await ShouldBeSoundAsync(rp);
    }

    [Fact]
    public async Task Vault_packs_no_kept_point_references_are_deleted_and_the_rest_stay_sound()
    {
        var source = await SourceAsync();
        var shared = TestPacks.Random(3000);
        var only = TestPacks.Random(3500);
        var old = await BackupAsync(source, [shared, only], [.. shared.Chunks, .. only.Chunks]);
        var live = await BackupAsync(source, [], shared.Chunks);
        var workers = Workers();
        await workers.GetRequiredService<VaultStore>().EnsureCreatedAsync(Ct);
        var copier = workers.GetRequiredService<VaultCopier>();
        foreach (var rp in new[] { old, live })
            await copier.CopyAsync(rp, await PacksOfAsync(rp), new CommandMetadata(), Ct);
        await _client.WaitForAsync($"/api/recovery-points/{live}", v => v.GetProperty("tier").GetString() == "Both");
        var oldOnly = (await PacksOfAsync(old)).Except(await PacksOfAsync(live)).ToList();
        await ExpireAsync(old, StorageTier.Vault);

        var round = await RoundAsync(workers.GetRequiredService<PackCollector>());
        oldOnly.ShouldAllBe(p => round.DeletedFromVault.Contains(p));
        var vault = workers.GetRequiredService<VaultStore>();
        foreach (var pack in oldOnly) (await vault.PackLengthAsync(pack, Ct)).ShouldBeNull();
        foreach (var pack in await PacksOfAsync(live)) (await vault.PackLengthAsync(pack, Ct)).ShouldNotBeNull();
        (await vault.ReadManifestAsync(old, Ct)).ShouldBeNull();
        await ShouldBeSoundAsync(live, "Vault");
        // Still on disk: kept there by the short-term range, whatever the vault did.
        round.CondemnedOnDisk.ShouldNotContain(only.Id);
        OnDisk(only.Id).ShouldBeTrue();
    }

    [Fact]
    public async Task Collection_racing_with_backups_never_deletes_a_pack_a_created_point_needs()
    {
        var source = await SourceAsync();
        var collector = Collector();
        var created = new List<Guid>();
        var pool = new List<Backup.Storage.Crypto.ChunkId>();
        for (var round = 0; round < 8; round++)
        {
            // A backup that reuses chunks it was told are known, next to a collector round and an expiry.
            var known = (await _client.KnownChunksAsync(source.Agent)).ToHashSet();
            var reuse = pool.Where(known.Contains).Take(3).ToList();
            var rp = await StartAsync(source);
            var pack = TestPacks.Build(RandomNumberGenerator.GetBytes(2000), RandomNumberGenerator.GetBytes(2500));
            pool.AddRange(pack.Chunks);
            var backup = FinishAsync(source, rp, [pack], [.. reuse, .. pack.Chunks]);
            var collecting = RoundAsync(collector);
            await Task.WhenAll(backup, collecting);
            var commit = await backup;
            if (commit.StatusCode == HttpStatusCode.NoContent) created.Add(rp);
            else
            {
                // A chunk it relied on went: refused, nothing broken; the agent reports the run failed, as the real one does.
                commit.StatusCode.ShouldBe(HttpStatusCode.UnprocessableEntity, await commit.Content.ReadAsStringAsync(Ct));
                var failed = await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{source.Agent.AgentId}/recovery-points/{rp}/fail",
                    source.Agent.Credential, JsonContent.Create(new FailJobRequest("chunks went meanwhile"))), Ct);
                failed.StatusCode.ShouldBe(HttpStatusCode.NoContent);
            }
            if (created.Count > 2)
            {
                await ExpireAsync(created[0], StorageTier.Disk, StorageTier.Vault);
                created.RemoveAt(0);
            }
        }
        await RoundAsync(collector);
        await RoundAsync(collector);
        created.Count.ShouldBeGreaterThan(0);
        foreach (var rp in created) await ShouldBeSoundAsync(rp);
    }

    [Fact]
    public async Task A_store_whose_pack_references_are_incomplete_is_not_collected_at_all()
    {
        var source = await SourceAsync();
        var data = TestPacks.Random(2500);
        var rp = await BackupAsync(source, [data], data.Chunks);
        // As in a store older than the reference projection: a recovery point it does not know would look like garbage.
        await using (var session = api.Store.LightweightSession())
        {
            session.Delete<RecoveryPointPacks>(rp);
            await session.SaveChangesAsync(Ct);
        }
        try
        {
            var refused = await Should.ThrowAsync<InvalidOperationException>(() => RoundAsync(Collector()));
            refused.Message.ShouldContain("rebuild");
            OnDisk(data.Id).ShouldBeTrue();
            (await _client.KnownChunksAsync(source.Agent)).ShouldContain(data.Chunks[0]); // nothing condemned either
        }
        finally
        {
            await using var session = api.Store.LightweightSession();
            session.Store(new RecoveryPointPacks { Id = rp, Status = RecoveryPointStatus.Created, Packs = await PacksFromViewAsync(rp) });
            await session.SaveChangesAsync(Ct);
        }
    }

    private async Task<List<string>> PacksFromViewAsync(Guid rp)
    {
        await using var session = api.Store.QuerySession();
        var created = (await session.Events.FetchStreamAsync(rp, token: Ct)).Select(e => e.Data).OfType<RecoveryPointCreated>().Single();
        return [.. created.PackIds];
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var provider in _providers) await provider.DisposeAsync();
    }
}
