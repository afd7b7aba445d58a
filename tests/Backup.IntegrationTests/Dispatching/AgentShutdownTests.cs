using System.Runtime.Versioning;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
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
    private readonly string _schema = TestServices.NewSchema("agentstop");
    private readonly string _container = $"vault-{Guid.NewGuid():N}";
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("backup-agentstop-");
    private readonly string _adminKey = $"agentstop-admin-{Guid.NewGuid():N}";
    private readonly List<ProductProcess> _processes = [];
    private ApiClient _client = null!;
    private string _baseUrl = "";
    private DocumentStore _store = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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

    private ProductProcess StartAgent(string? token = null)
    {
        var args = new List<string>
        {
            $"--Agent:Server={_baseUrl}/", $"--Agent:StateDirectory={StateDirectory}", "--Agent:MachineName=stopping-machine",
            "--Agent:PollInterval=00:00:00.300", $"--Agent:PassphraseFile={PassphraseFile}", "--Agent:PackTargetBytes=1048576",
        };
        if (token is not null) args.Add($"--Agent:EnrolmentToken={token}");
        var agent = ProductProcess.Start("Backup.Agent", new Dictionary<string, string>(), [.. args]);
        _processes.Add(agent);
        return agent;
    }

    private async Task<List<object>> EventsAsync(Guid stream)
    {
        await using var session = _store.QuerySession();
        return [.. (await session.Events.FetchStreamAsync(stream, token: Ct)).Select(e => e.Data)];
    }

    private async Task<List<object>> WaitForEventsAsync(Guid stream, Func<List<object>, bool> done, ProductProcess agent)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
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
    public async Task A_stopped_agent_releases_its_job_and_its_next_run_takes_it_at_once()
    {
        // Random data in 1 MiB packs writes packs early; a large sparse file (no disk space, but 32 GiB to read and chunk)
        // keeps the agent busy until it is stopped.
        var folder = Directory.CreateDirectory(Path.Combine(_work.FullName, "data"));
        await File.WriteAllBytesAsync(Path.Combine(folder.FullName, "a-random.bin"), System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 << 20), Ct);
        var sparse = Path.Combine(folder.FullName, "sparse-32GiB.bin");
        await using (var file = File.Create(sparse)) file.SetLength(32L << 30);

        var agent = StartAgent(await _client.IssueTokenAsync());
        var agentId = await WaitAgentAsync(agent);
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
        await using (var session = _store.QuerySession())
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
