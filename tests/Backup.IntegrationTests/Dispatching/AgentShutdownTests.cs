using System.Runtime.Versioning;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Marten;

namespace Backup.IntegrationTests.Dispatching;

/// <summary>
/// A real agent process stopped (SIGTERM, as a service manager stops it) in the middle of a backup: it stops sending,
/// gives the job back, and exits cleanly; the job is queued again at once, so the agent's next run takes it on its first
/// poll, although the lease of the stopped run would still hold for minutes.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class AgentShutdownTests : IAsyncLifetime
{
    // Far longer than the test waits: a job left to its lease could not be claimed again within it.
    private static readonly TimeSpan Lease = TimeSpan.FromMinutes(30);
    private readonly ProductRun _run = new("agentstop");
    private ApiClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string StateDirectory => Path.Combine(_run.Work.FullName, "agent-state");

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync(new Dictionary<string, string> { ["Backup__JobLeases__Duration"] = Lease.ToString() });
        _client = _run.Client;
    }

    private ProductProcess StartAgent(string? token = null) =>
        _run.StartAgent("stopping-machine", StateDirectory, token, extraArgs: "--Agent:PackTargetBytes=1048576");

    private Task<List<object>> EventsAsync(Guid stream) => _run.EventsAsync(stream);

    private Task<List<object>> WaitForEventsAsync(Guid stream, Func<List<object>, bool> done, ProductProcess agent) =>
        _run.WaitForEventsAsync(stream, done, agent, TimeSpan.FromSeconds(120));

    [Fact]
    public async Task A_stopped_agent_releases_its_job_and_its_next_run_takes_it_at_once()
    {
        // Random data in 1 MiB packs writes packs early; a large sparse file (no disk space, but 32 GiB to read and chunk)
        // keeps the agent busy until it is stopped.
        var folder = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "data"));
        await File.WriteAllBytesAsync(Path.Combine(folder.FullName, "a-random.bin"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 << 20), Ct);
        var sparse = Path.Combine(folder.FullName, "sparse-32GiB.bin");
        await using (var file = File.Create(sparse)) file.SetLength(32L << 30);

        var agent = StartAgent(await _client.IssueTokenAsync());
        var agentId = await _run.WaitForAgentAsync("stopping-machine", agent);
        var group = await _client.CreateGroupAsync("Stopping agent");
        var source = await _client.AddFolderAsync(group, agentId, folder.FullName);
        var rp = await _client.RequestBackupAsync(source);
        await WaitForEventsAsync(rp, events => events.OfType<PackWrittenToDisk>().Any(), agent);

        await agent.TerminateAsync();
        (await agent.ExitCodeAsync(TimeSpan.FromSeconds(60))).ShouldBe(0, "a stopped agent shuts down cleanly:\n" + agent.Output);

        var stopped = await EventsAsync(rp);
        var released = stopped[^1].ShouldBeOfType<JobReleased>();
        released.Reason.ShouldBe("agent stopping");
        released.AgentId.ShouldBe(agentId);
        stopped.ShouldNotContain(e => e is JobLeaseExpired || e is RecoveryPointFailed || e is RecoveryPointCreated);
        await using (var session = _run.Store.QuerySession())
        {
            var job = (await session.LoadAsync<QueuedJob>(rp, Ct))!;
            job.State.ShouldBe(QueuedJobState.Queued);
            job.NotBefore.ShouldBeNull();
            job.LeaseExpiries.ShouldBe(0);
        }
        Directory.EnumerateFiles(Path.Combine(StateDirectory, "scratch"), "*", SearchOption.AllDirectories).ShouldBeEmpty();

        // The next run of the agent (same machine, same credential) takes the job on its first polls and, with the big file
        // gone, finishes it.
        File.Delete(sparse);
        var next = StartAgent();
        var done = await WaitForEventsAsync(rp, events => events.OfType<RecoveryPointCreated>().Any(), next);
        done.OfType<BackupStarted>().Count().ShouldBe(2);
        done.OfType<JobLeaseExpired>().ShouldBeEmpty();
        done.OfType<RecoveryPointCreated>().ShouldHaveSingleItem().Files.ShouldBe(1);
    }

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}
