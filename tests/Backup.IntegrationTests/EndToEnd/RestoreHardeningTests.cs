using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Runtime.Versioning;
using System.Text.Json;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// Restores by the real agent process of trees a real machine holds (issue 17): a name as long as the file system allows, an
/// item the target refuses, symlinks and the protected folder's own mode and mtime; and the agent's state folder after a crash.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class RestoreHardeningTests : IAsyncLifetime
{
    private readonly ProductRun _run = new("restorefs");
    private ApiClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _run.StartApiAsync(new Dictionary<string, string> { ["Backup__RunDaemon"] = "true" });
        _client = _run.Client;
    }

    [Fact]
    public async Task An_item_the_target_refuses_is_listed_with_its_reason_and_every_other_item_is_restored()
    {
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "source")).FullName;
        // 254 bytes: legal on every Linux file system (NAME_MAX 255), too long for any suffix.
        var longName = new string('m', 250) + ".txt";
        File.WriteAllText(Path.Combine(source, "a.txt"), "the same words\n");
        File.WriteAllText(Path.Combine(source, longName), "a name as long as ext4 allows\n");
        Directory.CreateDirectory(Path.Combine(source, "refused"));
        File.WriteAllText(Path.Combine(source, "refused", "inside.txt"), "the target has a file where this folder goes\n");
        File.WriteAllText(Path.Combine(source, "z.txt"), "the same words\n"); // deduplicated with a.txt: written from one chunk
        Directory.CreateDirectory(Path.Combine(source, "docs"));
        File.WriteAllText(Path.Combine(source, "docs", "plan.txt"), "plan\n");
        var (agent, recoveryPoint) = await BackUpAsync(source);

        var target = Path.Combine(_run.Work.FullName, "restored");
        // A file of the user's where the point has a folder: whatever the restore does with existing items, that folder and
        // what it holds cannot be made there.
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "refused"), "the user's own file\n");
        var restore = await RestoreAsync(recoveryPoint, target, agent);

        restore.GetProperty("status").GetString().ShouldBe("CompletedWithErrors", restore.ToString() + "\n" + agent.Output);
        var failed = restore.GetProperty("failedItems").EnumerateArray().ToList();
        failed.Select(f => f.GetProperty("path").GetString()).ShouldBe(["refused", "refused/inside.txt"]);
        failed.ShouldAllBe(f => !string.IsNullOrWhiteSpace(f.GetProperty("reason").GetString()));
        restore.GetProperty("failedItemCount").GetInt32().ShouldBe(2);
        restore.GetProperty("files").GetInt32().ShouldBe(4);
        foreach (var name in new[] { "a.txt", longName, "z.txt", Path.Combine("docs", "plan.txt") })
            File.ReadAllText(Path.Combine(target, name)).ShouldBe(File.ReadAllText(Path.Combine(source, name)), name);
        File.ReadAllText(Path.Combine(target, "refused")).ShouldBe("the user's own file\n", "what was in the way is left as it was");
        Directory.EnumerateFileSystemEntries(target, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(target, p))
            .Order(StringComparer.Ordinal).ToList()
            .ShouldBe(["a.txt", "docs", Path.Combine("docs", "plan.txt"), longName, "refused", "z.txt"],
                customMessage: "no temporary file or folder is left in the target");
    }

    [Fact]
    public async Task Symlinks_keep_their_own_mtime_and_the_restored_folder_gets_the_protected_folders_mode_and_mtime()
    {
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "linked")).FullName;
        File.WriteAllText(Path.Combine(source, "plan.txt"), "plan\n");
        var link = Path.Combine(source, "latest");
        File.CreateSymbolicLink(link, "plan.txt");
        var linkTime = new DateTimeOffset(2003, 4, 5, 6, 7, 8, TimeSpan.Zero);
        await RunAsync("touch", "-h", "-d", "@" + linkTime.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), link);
        File.SetUnixFileMode(source, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        var folderTime = new DateTime(2005, 6, 7, 8, 9, 10, DateTimeKind.Utc);
        Directory.SetLastWriteTimeUtc(source, folderTime);
        var (agent, recoveryPoint) = await BackUpAsync(source);

        var target = Path.Combine(_run.Work.FullName, "relinked");
        var restore = await RestoreAsync(recoveryPoint, target, agent);

        restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
        new FileInfo(Path.Combine(target, "latest")).LinkTarget.ShouldBe("plan.txt");
        (await OwnMtimeAsync(Path.Combine(target, "latest"))).ShouldBe(linkTime.ToUnixTimeSeconds(), "the symlink's own mtime");
        File.GetUnixFileMode(target).ShouldBe(File.GetUnixFileMode(source));
        Directory.GetLastWriteTimeUtc(target).ShouldBe(folderTime);
    }

    [Fact]
    public async Task Temporary_cache_files_an_agent_killed_while_saving_left_behind_are_removed()
    {
        var state = Path.Combine(_run.Work.FullName, "agent-state");
        var cache = Directory.CreateDirectory(Path.Combine(state, "cache")).FullName;
        // What kill -9 leaves while the cache is being written: its temporary, empty or half-written, never renamed.
        var left = new[]
        {
            Path.Combine(cache, "0123456789abcdef0123456789abcdef.cache." + Guid.NewGuid().ToString("N") + ".tmp"),
            Path.Combine(cache, "fedcba9876543210fedcba9876543210.cache." + Guid.NewGuid().ToString("N") + ".tmp"),
        };
        foreach (var file in left) File.WriteAllBytes(file, []);
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "cached")).FullName;
        File.WriteAllText(Path.Combine(source, "plan.txt"), "plan\n");

        await BackUpAsync(source, state);

        Directory.EnumerateFiles(cache).Where(f => f.EndsWith(".tmp", StringComparison.Ordinal)).ShouldBeEmpty();
        Directory.EnumerateFiles(cache, "*.cache").Count().ShouldBe(1, "the backup's own cache is kept");
    }

    private async Task<(ProductProcess Agent, Guid RecoveryPoint)> BackUpAsync(string source, string? state = null)
    {
        var agent = _run.StartAgent("restore-machine", state ?? Path.Combine(_run.Work.FullName, "agent-state"), await _client.IssueTokenAsync());
        var agentId = await _run.WaitForAgentAsync("restore-machine", agent);
        var group = await _client.CreateGroupAsync("Restores");
        var recoveryPoint = await _client.RequestBackupAsync(await _client.AddFolderAsync(group, agentId, source));
        var point = await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}",
            rp => rp.GetProperty("status").GetString() is "Created" or "Failed", TimeSpan.FromSeconds(90));
        point.GetProperty("status").GetString().ShouldBe("Created", point.ToString() + "\n" + agent.Output);
        return (agent, recoveryPoint);
    }

    private async Task<JsonElement> RestoreAsync(Guid recoveryPoint, string target, ProductProcess agent)
    {
        var response = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{recoveryPoint}/restores", new { source = "Disk", targetPath = target }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var id = await ApiClient.IdAsync(response);
        try
        {
            return await _client.WaitForAsync($"/api/restores/{id}",
                r => r.GetProperty("status").GetString() is "Completed" or "CompletedWithErrors" or "Failed", TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\n" + agent.Output, e);
        }
    }

    /// <summary>A path's own mtime in seconds (not its target's, for a symlink), as stat(1) reads it.</summary>
    private static async Task<long> OwnMtimeAsync(string path) =>
        long.Parse((await RunAsync("stat", "-c", "%Y", path)).Trim(), CultureInfo.InvariantCulture);

    private static async Task<string> RunAsync(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync(Ct);
        var error = await process.StandardError.ReadToEndAsync(Ct);
        await process.WaitForExitAsync(Ct);
        process.ExitCode.ShouldBe(0, $"{program} {string.Join(' ', args)}: {error}");
        return output;
    }

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}
