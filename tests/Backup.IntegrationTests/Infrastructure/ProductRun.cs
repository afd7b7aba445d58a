using Azure.Storage.Blobs;
using Backup.Projections;
using Marten;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>
/// The real product for one test class: a schema, a work folder and a vault container of its own, the API process (and
/// agents started on it), an admin client, and the event store to look at; all of it ended and removed together.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ProductRun(string prefix) : IAsyncDisposable
{
    private readonly List<ProductProcess> _processes = [];
    private DocumentStore? _store;
    private ProductProcess? _api;
    private IReadOnlyDictionary<string, string>? _apiSettings;

    public string Schema { get; } = TestServices.NewSchema(prefix);
    public DirectoryInfo Work { get; } = Directory.CreateTempSubdirectory($"backup-{prefix}-");
    public string Container { get; } = $"vault-{Guid.NewGuid():N}";
    public string AdminKey { get; } = $"{prefix}-admin-{Guid.NewGuid():N}";
    public string BaseUrl { get; private set; } = "";
    public ApiClient Client { get; private set; } = null!;
    public string PassphraseFile => Path.Combine(Work.FullName, "passphrase");
    public DocumentStore Store => _store ??= DocumentStore.For(o => o.ConfigureCatalog(TestServices.Postgres, Schema));

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What every process of this run is configured with (<paramref name="extra"/> on top).</summary>
    public Dictionary<string, string> Environment(IReadOnlyDictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Marten"] = TestServices.Postgres,
            ["ConnectionStrings__Vault"] = TestServices.Vault,
            ["Backup__Schema"] = Schema,
            ["Backup__DiskStore"] = Path.Combine(Work.FullName, "disk-store"),
            ["Backup__VaultContainer"] = Container,
            ["Backup__BootstrapAdminKey"] = AdminKey,
        };
        foreach (var (k, v) in extra ?? new Dictionary<string, string>()) environment[k] = v;
        return environment;
    }

    /// <summary>Starts the API, waits for it to be healthy, creates the repository key and writes the agents' passphrase file.</summary>
    public async Task StartApiAsync(IReadOnlyDictionary<string, string>? extra = null)
    {
        var (api, baseUrl) = await ProductProcess.StartApiAsync(Environment(extra), Ct);
        _processes.Add(api);
        (_api, _apiSettings) = (api, extra);
        BaseUrl = baseUrl;
        Client = new ApiClient(new HttpClient { BaseAddress = new Uri(baseUrl), DefaultRequestHeaders = { Authorization = new("ApiKey", AdminKey) } });
        await Client.CreateRepositoryKeyAsync();
        await File.WriteAllTextAsync(PassphraseFile, ApiClient.Passphrase + "\n", Ct);
    }

    /// <summary>Starts the workers (schedulers, reaper, the async daemon's projections and subscriptions); the API must be up first, for the schema.</summary>
    public ProductProcess StartWorkers(IReadOnlyDictionary<string, string>? extra = null)
    {
        var workers = ProductProcess.Start("Backup.Workers", Environment(extra));
        _processes.Add(workers);
        return workers;
    }

    /// <summary>Kills the API (kill -9, as a crash would) and starts it again at the same address once <paramref name="whileDown"/> is done.</summary>
    public async Task RestartApiAsync(Func<Task> whileDown)
    {
        await _api!.KillAsync();
        await whileDown();
        var (api, _) = await ProductProcess.StartApiAsync(Environment(_apiSettings), Ct, BaseUrl);
        _processes.Add(api);
        _api = api;
    }

    /// <summary>
    /// Starts an agent on this run's API (enrolling with <paramref name="token"/> when given), as this user or unprivileged, in
    /// <paramref name="workingDirectory"/> when given (this user only), else in its program's folder.
    /// </summary>
    public ProductProcess StartAgent(string machine, string stateDirectory, string? token, bool unprivileged = false,
        IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null, params string[] extraArgs)
    {
        var args = new List<string>
        {
            $"--Agent:Server={BaseUrl}/", $"--Agent:StateDirectory={stateDirectory}", $"--Agent:MachineName={machine}",
            "--Agent:PollInterval=00:00:00.300", $"--Agent:PassphraseFile={PassphraseFile}",
        };
        if (token is not null) args.Add($"--Agent:EnrolmentToken={token}");
        args.AddRange(extraArgs);
        var env = new Dictionary<string, string>(environment ?? new Dictionary<string, string>());
        var agent = unprivileged ? ProductProcess.StartUnprivileged("Backup.Agent", env, [.. args])
            : workingDirectory is not null ? ProductProcess.StartIn(workingDirectory, "Backup.Agent", env, [.. args])
            : ProductProcess.Start("Backup.Agent", env, [.. args]);
        _processes.Add(agent);
        return agent;
    }

    /// <summary>The id the server gave the agent enrolled as <paramref name="machine"/>, once it has enrolled.</summary>
    public async Task<Guid> WaitForAgentAsync(string machine, ProductProcess agent)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !agent.HasExited)
        {
            var id = (await Client.GetJsonAsync("/api/agents")).EnumerateArray()
                .Where(a => a.GetProperty("machineName").GetString() == machine).Select(a => (Guid?)a.GetProperty("id").GetGuid()).FirstOrDefault();
            if (id is { } found) return found;
            await Task.Delay(200, Ct);
        }
        throw new TimeoutException($"The agent {machine} did not enrol:\n" + agent.Output);
    }

    public async Task<List<object>> EventsAsync(Guid stream)
    {
        await using var session = Store.QuerySession();
        return [.. (await session.Events.FetchStreamAsync(stream, token: Ct)).Select(e => e.Data)];
    }

    /// <summary>Polls the stream until <paramref name="done"/> holds; fails with the stream and the agent's output otherwise.</summary>
    public async Task<List<object>> WaitForEventsAsync(Guid stream, Func<List<object>, bool> done, ProductProcess agent, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var events = await EventsAsync(stream);
            if (done(events)) return events;
            if (DateTime.UtcNow > deadline || agent.HasExited)
                throw new TimeoutException($"Stream {stream} never got there: {string.Join(", ", events.Select(e => e.GetType().Name))}\n{agent.Output}");
            await Task.Delay(200, Ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        if (_store is not null) await _store.DisposeAsync();
        await TestServices.DropSchemaAsync(Schema);
        await new BlobContainerClient(TestServices.Vault, Container).DeleteIfExistsAsync();
        foreach (var dir in Work.EnumerateDirectories("*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
            if (dir.UnixFileMode == UnixFileMode.None) dir.UnixFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        Work.Delete(recursive: true);
    }
}
