using System.Diagnostics;
using System.Runtime.Versioning;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Npgsql;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>Stops the shared PostgreSQL for a while: nothing else may run meanwhile.</summary>
[CollectionDefinition(nameof(DatabaseOutage), DisableParallelization = true)]
public sealed class DatabaseOutage;

/// <summary>
/// The agent must never die of its server (issue 17): PostgreSQL stopped in the middle of a backup makes every request of the
/// real agent process fail (500) until it is back, an API killed and started again refuses its connections meanwhile; the
/// agent waits either out, keeps its job and completes it.
/// </summary>
[Collection(nameof(DatabaseOutage))]
[SupportedOSPlatform("linux")]
public sealed class AgentOutageTests : IAsyncLifetime
{
    private readonly ProductRun _run = new("outage");
    private bool _databaseDown;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => await _run.StartApiAsync();

    [Fact]
    public async Task The_agent_rides_out_its_database_stopping_mid_backup_and_the_backup_completes()
    {
        var (agent, recoveryPoint) = await BackupUnderWayAsync();

        await DatabaseAsync("pg-down");
        // The agent met the outage in the middle of its job (a request of the job refused with 500) and is waiting it out.
        await agent.WaitForOutputAsync("); trying again in", TimeSpan.FromSeconds(120));
        await DatabaseAsync("pg-up");

        await ShouldCompleteInTheSameRunAsync(agent, recoveryPoint);
    }

    [Fact]
    public async Task The_agent_rides_out_its_api_restarting_mid_backup_and_the_backup_completes()
    {
        var (agent, recoveryPoint) = await BackupUnderWayAsync();

        // Killed (a crash), then started again at the same address once the agent is waiting for it (connection refused).
        await _run.RestartApiAsync(() => agent.WaitForOutputAsync("); trying again in", TimeSpan.FromSeconds(120)));

        await ShouldCompleteInTheSameRunAsync(agent, recoveryPoint);
    }

    /// <summary>A real agent has started a backup of 64 MiB (four packs to seal and upload, then the commit).</summary>
    private async Task<(ProductProcess Agent, Guid RecoveryPoint)> BackupUnderWayAsync()
    {
        var source = Directory.CreateDirectory(Path.Combine(_run.Work.FullName, "busy")).FullName;
        var buffer = new byte[1 << 20];
        for (var f = 0; f < 4; f++)
        {
            await using var file = File.Create(Path.Combine(source, $"data-{f}.bin"));
            for (var i = 0; i < 16; i++)
            {
                Random.Shared.NextBytes(buffer);
                await file.WriteAsync(buffer, Ct);
            }
        }
        var agent = _run.StartAgent("outage-machine", Path.Combine(_run.Work.FullName, "agent-state"), await _run.Client.IssueTokenAsync());
        var agentId = await _run.WaitForAgentAsync("outage-machine", agent);
        var group = await _run.Client.CreateGroupAsync("Outage");
        var recoveryPoint = await _run.Client.RequestBackupAsync(await _run.Client.AddFolderAsync(group, agentId, source));
        await agent.WaitForOutputAsync($"Backup {recoveryPoint} of", TimeSpan.FromSeconds(60));
        return (agent, recoveryPoint);
    }

    private async Task ShouldCompleteInTheSameRunAsync(ProductProcess agent, Guid recoveryPoint)
    {
        var events = await _run.WaitForEventsAsync(recoveryPoint, e => e.OfType<RecoveryPointCreated>().Any() || e.OfType<RecoveryPointFailed>().Any(),
            agent, TimeSpan.FromMinutes(3));
        events.OfType<RecoveryPointFailed>().ShouldBeEmpty(agent.Output);
        events.OfType<RecoveryPointCreated>().Single().Files.ShouldBe(4);
        events.OfType<Backup.Commands.Dispatching.JobLeaseExpired>().ShouldBeEmpty("the agent kept its job through the outage");
        agent.HasExited.ShouldBeFalse(agent.Output);
    }

    /// <summary>Stops or starts the PostgreSQL every process of the run uses, through the script that started it.</summary>
    private async Task DatabaseAsync(string command)
    {
        var port = new NpgsqlConnectionStringBuilder(TestServices.Postgres).Port;
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(TestServices.RepoRoot(), "scripts", "services.sh"));
        start.ArgumentList.Add(command);
        start.Environment["BACKUP_PG_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync(CancellationToken.None);
        await process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        await process.WaitForExitAsync(CancellationToken.None);
        process.ExitCode.ShouldBe(0, $"services.sh {command}: {await error}");
        _databaseDown = command == "pg-down";
        // Pooled connections died with the server; the next ones are opened afresh.
        if (!_databaseDown) NpgsqlConnection.ClearAllPools();
    }

    public async ValueTask DisposeAsync()
    {
        if (_databaseDown) await DatabaseAsync("pg-up");
        await _run.DisposeAsync();
    }
}
