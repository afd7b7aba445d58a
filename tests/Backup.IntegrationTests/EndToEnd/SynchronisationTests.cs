using System.Net;
using System.Net.Http.Json;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.Synchronising;
using Backup.IntegrationTests.Infrastructure;
using Marten;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// Synchronisation between recovery points, with the real API, workers and agent processes: a sync sends the folder's
/// data to the server's disk without creating a recovery point; the next recovery point then reads and sends only what
/// changed since, references what the sync sent, and restores byte for byte.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class SynchronisationTests : IAsyncLifetime
{
    private readonly ProductRun _run = new("sync");
    private ProductProcess? _workers;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync();
        _workers = ProductProcess.Start("Backup.Workers", _run.Environment());
    }

    [Fact]
    public async Task A_synchronisation_sends_the_data_without_a_recovery_point_and_the_next_point_sends_only_the_changes()
    {
        var folder = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "data"));
        var files = new Dictionary<string, int> { ["a.bin"] = 3 << 20, ["b.bin"] = 2 << 20, ["c.bin"] = 1 << 20 };
        foreach (var (name, size) in files)
            await File.WriteAllBytesAsync(Path.Combine(folder.FullName, name), RandomNumberGenerator.GetBytes(size), Ct);

        var agent = _run.StartAgent("syncing-machine", Path.Combine(_run.Work.FullName, "agent-state"), await _run.Client.IssueTokenAsync(),
            extraArgs: "--Agent:PackTargetBytes=1048576");
        var agentId = await _run.WaitForAgentAsync("syncing-machine", agent);
        var source = await _run.Client.AddFolderAsync(await _run.Client.CreateGroupAsync("Syncing"), agentId, folder.FullName);

        var sync = await _run.Client.RequestSyncAsync(source);
        var synced = (await _run.WaitForEventsAsync(sync, e => e.OfType<ReplicaSynchronised>().Any() || e.OfType<SyncFailed>().Any(), agent, TimeSpan.FromSeconds(120)));
        var done = synced.OfType<ReplicaSynchronised>().ShouldHaveSingleItem(string.Join(", ", synced) + "\n" + agent.Output);
        done.Files.ShouldBe(3);
        done.BytesRead.ShouldBe(6L << 20);
        var sent = synced.OfType<SyncPackWrittenToDisk>().Sum(p => p.Bytes);
        sent.ShouldBeGreaterThan(6L << 20, "random data does not compress: all of it went to the server's disk");
        done.PackIds.ShouldBe(synced.OfType<SyncPackWrittenToDisk>().Select(p => p.PackId), ignoreOrder: true);
        await using (var session = _run.Store.QuerySession())
            (await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "backup_requested.v1").CountAsync(Ct))
                .ShouldBe(0, "a synchronisation creates no recovery point");

        // The job history shows it (the workers' projection).
        var job = await _run.Client.WaitForAsync($"/api/jobs/{sync}", j => j.GetProperty("state").GetString() == "Succeeded", TimeSpan.FromSeconds(60));
        job.GetProperty("kind").GetString().ShouldBe("Synchronisation");
        job.GetProperty("dataSourceId").GetGuid().ShouldBe(source);
        job.GetProperty("bytes").GetInt64().ShouldBe(sent);
        job.GetProperty("files").GetInt32().ShouldBe(3);

        // One file changes; the recovery point reads only it and sends only its new data (and the tree).
        await File.WriteAllBytesAsync(Path.Combine(folder.FullName, "b.bin"), RandomNumberGenerator.GetBytes(2 << 20), Ct);
        File.SetLastWriteTimeUtc(Path.Combine(folder.FullName, "b.bin"), DateTime.UtcNow.AddMinutes(1));
        var rp = await _run.Client.RequestBackupAsync(source);
        var backup = await _run.WaitForEventsAsync(rp, e => e.OfType<RecoveryPointCreated>().Any() || e.OfType<RecoveryPointFailed>().Any(), agent, TimeSpan.FromSeconds(120));
        var created = backup.OfType<RecoveryPointCreated>().ShouldHaveSingleItem(string.Join(", ", backup) + "\n" + agent.Output);
        created.Files.ShouldBe(3);
        var written = backup.OfType<PackWrittenToDisk>().Sum(p => p.Bytes);
        written.ShouldBeGreaterThan(2L << 20);
        written.ShouldBeLessThan(3L << 20, "a.bin and c.bin were sent by the synchronisation, not again");
        created.PackIds.Intersect(done.PackIds).ShouldNotBeEmpty("the recovery point references the synchronisation's packs");
        // The agent logs its summary just after the commit returns: wait for the line rather than race it.
        await agent.WaitForOutputAsync("(2 unchanged, not read)", TimeSpan.FromSeconds(30));

        // And it restores byte for byte, the unchanged files from the synchronisation's packs.
        var target = Path.Combine(_run.Work.FullName, "restored");
        var response = await _run.Client.Http.PostAsJsonAsync($"/api/recovery-points/{rp}/restores", new { source = "Disk", targetPath = target }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var restore = await ApiClient.IdAsync(response);
        var restored = await _run.WaitForEventsAsync(restore, e => e.OfType<RestoreCompleted>().Any() || e.OfType<RestoreFailed>().Any(), agent, TimeSpan.FromSeconds(120));
        restored.OfType<RestoreCompleted>().ShouldHaveSingleItem(string.Join(", ", restored) + "\n" + agent.Output);
        foreach (var name in files.Keys)
            (await File.ReadAllBytesAsync(Path.Combine(target, name), Ct)).ShouldBe(await File.ReadAllBytesAsync(Path.Combine(folder.FullName, name), Ct), name);
    }

    public async ValueTask DisposeAsync()
    {
        if (_workers is not null) await _workers.DisposeAsync();
        await _run.DisposeAsync();
    }
}
