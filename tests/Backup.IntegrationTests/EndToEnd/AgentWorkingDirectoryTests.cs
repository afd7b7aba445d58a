using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// An agent is started wherever its service manager or its user happens to be (a service's working directory is often "/",
/// an operator's a data folder). It must not watch that folder: a host's default settings watch their content root, the
/// working directory, with every folder under it, so an agent started above a folder it restores into queued an event for
/// each file it wrote (a restore of 22,000 files peaked at 154 MB instead of 87 MB, issue 4 note).
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class AgentWorkingDirectoryTests : IAsyncLifetime
{
    private readonly ProductRun _run = new("cwd");

    public async ValueTask InitializeAsync() => await _run.StartApiAsync();

    [Fact]
    public async Task An_agent_watches_no_folder_under_the_one_it_was_started_in()
    {
        var started = _run.Work.CreateSubdirectory("started-here");
        var restoreTarget = started.CreateSubdirectory("restore-target");
        var state = Path.Combine(_run.Work.FullName, "agent-state");

        var agent = _run.StartAgent("cwd-machine", state, await _run.Client.IssueTokenAsync(), workingDirectory: started.FullName);
        await _run.WaitForAgentAsync("cwd-machine", agent);

        var watched = await WatchedInodesAsync(agent.Id);
        watched.ShouldNotContain(await InodeAsync(started.FullName), agent.Output);
        watched.ShouldNotContain(await InodeAsync(restoreTarget.FullName), agent.Output);
    }

    /// <summary>The inodes the process watches with inotify, from /proc/{pid}/fdinfo ("inotify wd:1 ino:1a2b sdev:… …").</summary>
    private static async Task<List<ulong>> WatchedInodesAsync(int pid)
    {
        var inodes = new List<ulong>();
        foreach (var info in Directory.EnumerateFiles($"/proc/{pid}/fdinfo"))
        {
            string[] lines;
            try
            {
                lines = await File.ReadAllLinesAsync(info, TestContext.Current.CancellationToken);
            }
            catch (IOException)
            {
                continue; // a descriptor closed meanwhile
            }
            foreach (var line in lines.Where(l => l.StartsWith("inotify ", StringComparison.Ordinal)))
            {
                var ino = line.Split(' ').Single(p => p.StartsWith("ino:", StringComparison.Ordinal))["ino:".Length..];
                inodes.Add(ulong.Parse(ino, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }
        return inodes;
    }

    private static async Task<ulong> InodeAsync(string path)
    {
        using var stat = Process.Start(new ProcessStartInfo("stat", ["-c", "%i", path]) { RedirectStandardOutput = true })!;
        var output = await stat.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await stat.WaitForExitAsync(TestContext.Current.CancellationToken);
        return ulong.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    public ValueTask DisposeAsync() => _run.DisposeAsync();
}
