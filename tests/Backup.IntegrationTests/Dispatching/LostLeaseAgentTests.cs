extern alias workers;
using System.Runtime.Versioning;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Marten;
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
    private readonly string _schema = TestServices.NewSchema("lease");
    private readonly string _container = $"vault-{Guid.NewGuid():N}";
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("backup-lease-");
    private readonly List<ProductProcess> _processes = [];
    private ApiClient _client = null!;
    private string _baseUrl = "";
    private DocumentStore _store = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly string _adminKey = $"lease-admin-{Guid.NewGuid():N}";

    private string StateDirectory => Path.Combine(_work.FullName, "agent-state");

    private string PassphraseFile => Path.Combine(_work.FullName, "passphrase");

    public async ValueTask InitializeAsync()
    {
        var (api, baseUrl) = await ProductProcess.StartApiAsync(new Dictionary<string, string>
        {
            ["ConnectionStrings__Marten"] = TestServices.Postgres,
            ["ConnectionStrings__Vault"] = TestServices.Vault,
            ["Backup__Schema"] = _schema,
            ["Backup__DiskStore"] = Path.Combine(_work.FullName, "disk-store"),
            ["Backup__VaultContainer"] = _container,
            ["Backup__JobLeases__Duration"] = Lease.ToString(),
            ["Backup__BootstrapAdminKey"] = _adminKey,
        }, Ct);
        _processes.Add(api);
        _baseUrl = baseUrl;
        _client = new ApiClient(new HttpClient { BaseAddress = new Uri(baseUrl), DefaultRequestHeaders = { Authorization = new("ApiKey", _adminKey) } });
        await _client.CreateRepositoryKeyAsync();
        await File.WriteAllTextAsync(PassphraseFile, ApiClient.Passphrase + "\n", Ct);
        _store = DocumentStore.For(o => o.ConfigureCatalog(TestServices.Postgres, _schema));
    }

    private LeaseReaper Reaper() => new(_store, TimeProvider.System,
        Options.Create(new JobLeaseOptions { Duration = Lease, MaxAttempts = 3, RetryBackoff = TimeSpan.Zero, MaxRetryBackoff = TimeSpan.Zero }),
        NullLogger<LeaseReaper>.Instance);

    private async Task<List<object>> EventsAsync(Guid stream)
    {
        await using var session = _store.QuerySession();
        return [.. (await session.Events.FetchStreamAsync(stream, token: Ct)).Select(e => e.Data)];
    }

    private async Task<List<object>> WaitForEventsAsync(Guid stream, Func<List<object>, bool> done, ProductProcess agent)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            var events = await EventsAsync(stream);
            if (done(events)) return events;
            if (DateTime.UtcNow > deadline || agent.HasExited)
                throw new TimeoutException($"Stream {stream} never got there: {string.Join(", ", events.Select(e => e.GetType().Name))}\n{agent.Output}");
            await Task.Delay(200, Ct);
        }
    }

    [Fact]
    public async Task An_agent_whose_lease_is_reaped_cancels_the_job_cleans_its_scratch_and_reports_nothing()
    {
        // Random data in 1 MiB packs writes packs early; a large sparse file (no disk space, but 32 GiB to read and chunk)
        // then keeps the agent busy long enough to lose the lease mid-run.
        var big = Directory.CreateDirectory(Path.Combine(_work.FullName, "big"));
        await File.WriteAllBytesAsync(Path.Combine(big.FullName, "a-random.bin"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 << 20), Ct);
        await using (var sparse = File.Create(Path.Combine(big.FullName, "sparse-32GiB.bin"))) sparse.SetLength(32L << 30);
        var small = Directory.CreateDirectory(Path.Combine(_work.FullName, "small"));
        await File.WriteAllTextAsync(Path.Combine(small.FullName, "note.txt"), "still working\n", Ct);

        var token = await _client.IssueTokenAsync();
        var agent = ProductProcess.Start("Backup.Agent", new Dictionary<string, string>(),
            $"--Agent:Server={_baseUrl}/", $"--Agent:EnrolmentToken={token}", $"--Agent:StateDirectory={StateDirectory}",
            "--Agent:MachineName=lease-machine", "--Agent:PollInterval=00:00:00.300", $"--Agent:PassphraseFile={PassphraseFile}",
            "--Agent:PackTargetBytes=1048576");
        _processes.Add(agent);
        var agentId = await WaitAgentAsync(agent);
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

    private async Task<Guid> WaitAgentAsync(ProductProcess agent)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !agent.HasExited)
        {
            var agents = await _client.GetJsonAsync("/api/agents");
            if (agents.GetArrayLength() == 1) return agents[0].GetProperty("id").GetGuid();
            await Task.Delay(200, Ct);
        }
        throw new TimeoutException("The agent did not enrol:\n" + agent.Output);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        await _store.DisposeAsync();
        await TestServices.DropSchemaAsync(_schema);
        _work.Delete(recursive: true);
    }
}
