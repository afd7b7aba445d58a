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

    private readonly ProductRun _run = new("unpriv");
    private ApiClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync(new Dictionary<string, string> { ["Backup__RunDaemon"] = "true" });
        _client = _run.Client;
    }

    [Fact]
    public async Task Unreadable_files_and_folders_are_skipped_with_the_reason_and_the_point_is_partial()
    {
        File.SetUnixFileMode(_run.Work.FullName, Open); // temp folders are the owner's alone; the agent's user must get in
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "protected"));
        File.SetUnixFileMode(source.FullName, Open);
        File.WriteAllText(Path.Combine(source.FullName, "readable.txt"), "anyone may read this\n");
        File.SetUnixFileMode(Path.Combine(source.FullName, "readable.txt"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var secret = Path.Combine(source.FullName, "secret.txt");
        File.WriteAllText(secret, "only its owner may read this\n");
        File.SetUnixFileMode(secret, UnixFileMode.None); // no one but root may read it, its owner included
        var locked = Directory.CreateDirectory(Path.Combine(source.FullName, "locked"));
        File.WriteAllText(Path.Combine(locked.FullName, "inside.txt"), "behind a folder only its owner may open\n");
        File.SetUnixFileMode(locked.FullName, UnixFileMode.None);
        var state = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "agent-state"));
        File.SetUnixFileMode(state.FullName, Open | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
        File.SetUnixFileMode(_run.PassphraseFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var agent = _run.StartAgent("unprivileged", state.FullName, await _client.IssueTokenAsync(), unprivileged: true,
            new Dictionary<string, string> { ["HOME"] = state.FullName, ["DOTNET_CLI_HOME"] = state.FullName });
        var agentId = await _run.WaitForAgentAsync("unprivileged", agent);

        var group = await _client.CreateGroupAsync("Unprivileged");
        var dataSource = await _client.AddFolderAsync(group, agentId, source.FullName);
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

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}
