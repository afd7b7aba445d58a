extern alias workers;
using System.Runtime.Versioning;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using workers::Backup.Workers.Dispatching;

namespace Backup.IntegrationTests.Dispatching;

/// <summary>
/// A real agent process whose lease is reaped while it is backing up: the server refuses its next heartbeat (409), and the
/// agent cancels the run, stops uploading, removes its scratch files and reports nothing, then goes on with its next job.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class LostLeaseAgentTests : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(3);
    private readonly ProductRun _run = new("lease");
    private ApiClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string StateDirectory => Path.Combine(_run.Work.FullName, "agent-state");

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync(new Dictionary<string, string> { ["Backup__JobLeases__Duration"] = Lease.ToString() });
        _client = _run.Client;
    }

    private LeaseReaper Reaper() => new(_run.Store, TimeProvider.System,
        Options.Create(new JobLeaseOptions { Duration = Lease, MaxAttempts = 3, RetryBackoff = TimeSpan.Zero, MaxRetryBackoff = TimeSpan.Zero }),
        NullLogger<LeaseReaper>.Instance);

    private Task<List<object>> EventsAsync(Guid stream) => _run.EventsAsync(stream);

    private Task<List<object>> WaitForEventsAsync(Guid stream, Func<List<object>, bool> done, ProductProcess agent) =>
        _run.WaitForEventsAsync(stream, done, agent, TimeSpan.FromSeconds(90));

    [Fact]
    public async Task An_agent_whose_lease_is_reaped_cancels_the_job_cleans_its_scratch_and_reports_nothing()
    {
        // Random data in 1 MiB packs writes packs early; a large sparse file (no disk space, but 32 GiB to read and chunk)
        // then keeps the agent busy long enough to lose the lease mid-run.
        var big = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "big"));
        await File.WriteAllBytesAsync(Path.Combine(big.FullName, "a-random.bin"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 << 20), Ct);
        await using (var sparse = File.Create(Path.Combine(big.FullName, "sparse-32GiB.bin"))) sparse.SetLength(32L << 30);
        var small = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "small"));
        await File.WriteAllTextAsync(Path.Combine(small.FullName, "note.txt"), "still working\n", Ct);

        var agent = _run.StartAgent("lease-machine", StateDirectory, await _client.IssueTokenAsync(), extraArgs: "--Agent:PackTargetBytes=1048576");
        var agentId = await _run.WaitForAgentAsync("lease-machine", agent);
        var group = await _client.CreateGroupAsync("Lease lost");
        var bigSource = await _client.AddFolderAsync(group, agentId, big.FullName);
        var smallSource = await _client.AddFolderAsync(group, agentId, small.FullName);

        var rp = await _client.RequestBackupAsync(bigSource);
        await WaitForEventsAsync(rp, events => events.OfType<PackWrittenToDisk>().Any(), agent);

        // The agent is mid-run and heartbeating; a reaper that sees the lease as long gone takes the job back.
        // It appends at the stream version it read, so a pack landing at the same moment makes it retry at its next tick.
        var reapedJobs = 0;
        for (var tick = 0; tick < 50 && reapedJobs == 0; tick++)
        {
            reapedJobs = await Reaper().ReapAsync(DateTimeOffset.UtcNow.AddHours(1), Ct);
            if (reapedJobs == 0) await Task.Delay(100, Ct);
        }
        reapedJobs.ShouldBe(1);
        var reaped = await EventsAsync(rp);
        reaped[^1].ShouldBeOfType<JobRequeued>();

        // The job's scratch folder goes once the run has stopped.
        var jobScratch = Path.Combine(StateDirectory, "scratch", rp.ToString("N"));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!agent.Output.Contains($"Job {rp} abandoned", StringComparison.Ordinal) || Directory.Exists(jobScratch))
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, "the agent never abandoned the job:\n" + agent.Output);
            await Task.Delay(200, Ct);
        }
        Directory.EnumerateFiles(Path.Combine(StateDirectory, "scratch"), "*", SearchOption.AllDirectories).ShouldBeEmpty();

        // Give a run that failed to stop the time to upload or report: nothing more lands on the stream.
        await Task.Delay(Lease, Ct);
        var after = await EventsAsync(rp);
        after.Count.ShouldBe(reaped.Count, string.Join(", ", after.Skip(reaped.Count).Select(e => e.GetType().Name)));
        after.ShouldNotContain(e => e is RecoveryPointFailed || e is RecoveryPointCreated);
        agent.Output.ShouldNotContain("Backup " + rp + " failed");

        // The agent carries on with its next job.
        var next = await _client.RequestBackupAsync(smallSource);
        await WaitForEventsAsync(next, events => events.OfType<RecoveryPointCreated>().Any(), agent);
    }

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}
