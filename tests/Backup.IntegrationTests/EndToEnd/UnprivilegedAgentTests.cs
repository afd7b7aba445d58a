using System.Runtime.Versioning;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// An agent that may not read everything it protects (it runs as an unprivileged user, as <c>nobody</c> when the tests run
/// as root): unreadable files and folders are skipped with the operating system's reason, the rest is backed up, and the
/// recovery point says it is partial. The unreadable items have mode 000: only root may read them, so the test holds for an
/// agent run as any other user (the developer's own, or nobody under CI's root).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class UnprivilegedAgentTests : IAsyncLifetime
{
    private const UnixFileMode Open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
        | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    private readonly string _schema = TestServices.NewSchema("unpriv");
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("backup-unpriv-");
    private readonly string _adminKey = $"unpriv-admin-{Guid.NewGuid():N}";
    private readonly string _container = $"vault-{Guid.NewGuid():N}";
    private readonly List<ProductProcess> _processes = [];
    private ApiClient _client = null!;
    private string _baseUrl = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        var (api, baseUrl) = await ProductProcess.StartApiAsync(new Dictionary<string, string>
        {
            ["ConnectionStrings__Marten"] = TestServices.Postgres,
            ["ConnectionStrings__Vault"] = TestServices.Vault,
            ["Backup__Schema"] = _schema,
            ["Backup__DiskStore"] = Path.Combine(_work.FullName, "disk-store"),
            ["Backup__VaultContainer"] = _container,
            ["Backup__BootstrapAdminKey"] = _adminKey,
            ["Backup__RunDaemon"] = "true",
        }, Ct);
        _processes.Add(api);
        _baseUrl = baseUrl;
        _client = new ApiClient(new HttpClient { BaseAddress = new Uri(baseUrl), DefaultRequestHeaders = { Authorization = new("ApiKey", _adminKey) } });
        await _client.CreateRepositoryKeyAsync();
    }

    [Fact]
    public async Task Unreadable_files_and_folders_are_skipped_with_the_reason_and_the_point_is_partial()
    {
        File.SetUnixFileMode(_work.FullName, Open); // temp folders are the owner's alone; the agent's user must get in
        var source = Directory.CreateDirectory(Path.Combine(_work.FullName, "protected"));
        File.SetUnixFileMode(source.FullName, Open);
        File.WriteAllText(Path.Combine(source.FullName, "readable.txt"), "anyone may read this\n");
        File.SetUnixFileMode(Path.Combine(source.FullName, "readable.txt"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var secret = Path.Combine(source.FullName, "secret.txt");
        File.WriteAllText(secret, "only its owner may read this\n");
        File.SetUnixFileMode(secret, UnixFileMode.None); // no one but root may read it, its owner included
        var locked = Directory.CreateDirectory(Path.Combine(source.FullName, "locked"));
        File.WriteAllText(Path.Combine(locked.FullName, "inside.txt"), "behind a folder only its owner may open\n");
        File.SetUnixFileMode(locked.FullName, UnixFileMode.None);
        var state = Directory.CreateDirectory(Path.Combine(_work.FullName, "agent-state"));
        File.SetUnixFileMode(state.FullName, Open | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
        var passphraseFile = Path.Combine(_work.FullName, "agent.passphrase");
        File.WriteAllText(passphraseFile, ApiClient.Passphrase + "\n");
        File.SetUnixFileMode(passphraseFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        var token = await _client.IssueTokenAsync();
        var agent = ProductProcess.StartUnprivileged("Backup.Agent",
            new Dictionary<string, string> { ["HOME"] = state.FullName, ["DOTNET_CLI_HOME"] = state.FullName },
            $"--Agent:Server={_baseUrl}/", $"--Agent:EnrolmentToken={token}", $"--Agent:StateDirectory={state.FullName}",
            "--Agent:MachineName=unprivileged", "--Agent:PollInterval=00:00:00.300", $"--Agent:PassphraseFile={passphraseFile}");
        _processes.Add(agent);
        Guid? agentId = null;
        for (var deadline = DateTime.UtcNow.AddSeconds(60); agentId is null; await Task.Delay(250, Ct))
        {
            if (DateTime.UtcNow > deadline || agent.HasExited) throw new TimeoutException("The agent did not enrol:\n" + agent.Output);
            agentId = (await _client.GetJsonAsync("/api/agents")).EnumerateArray()
                .Where(a => a.GetProperty("machineName").GetString() == "unprivileged").Select(a => (Guid?)a.GetProperty("id").GetGuid()).FirstOrDefault();
        }

        var group = await _client.CreateGroupAsync("Unprivileged");
        var dataSource = await _client.AddFolderAsync(group, agentId.Value, source.FullName);
        var recoveryPoint = await _client.RequestBackupAsync(dataSource);
        var point = await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}",
            rp => rp.GetProperty("status").GetString() is "Created" or "Failed", TimeSpan.FromSeconds(120));

        point.GetProperty("status").GetString().ShouldBe("Created", point.ToString() + "\n" + agent.Output);
        point.GetProperty("partial").GetBoolean().ShouldBeTrue();
        point.GetProperty("files").GetInt32().ShouldBe(1); // readable.txt
        var skipped = point.GetProperty("skipped").EnumerateArray()
            .ToDictionary(s => s.GetProperty("path").GetString()!, s => s.GetProperty("reason").GetString()!);
        skipped.Keys.ShouldBe(["locked", "secret.txt"], ignoreOrder: true);
        skipped.Values.ShouldAllBe(reason => reason.Contains("denied", StringComparison.OrdinalIgnoreCase));

        // The catalog holds what was backed up, not what was skipped.
        var items = (await _client.GetJsonAsync($"/api/items?under={Uri.EscapeDataString(source.FullName)}")).GetProperty("items").EnumerateArray()
            .Select(i => i.GetProperty("relativePath").GetString()).ToList();
        items.ShouldContain("readable.txt");
        items.ShouldNotContain("secret.txt");
        items.ShouldNotContain("locked/inside.txt");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        await TestServices.DropSchemaAsync(_schema);
        await new Azure.Storage.Blobs.BlobContainerClient(TestServices.Vault, _container).DeleteIfExistsAsync();
        var locked = Path.Combine(_work.FullName, "protected", "locked");
        if (Directory.Exists(locked)) File.SetUnixFileMode(locked, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _work.Delete(recursive: true);
    }
}
