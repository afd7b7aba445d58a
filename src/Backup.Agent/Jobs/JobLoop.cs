using System.Diagnostics;
using Backup.Agent.BackingUp;
using Backup.Agent.Enrolling;
using Backup.Agent.Restoring;
using Backup.Storage.Contracts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Backup.Agent.Jobs;

/// <summary>Polls the server for jobs and runs them one at a time. A failed job is reported, never dropped.</summary>
public sealed class JobLoop(
    Credentials credentials, ServerClient server, IOptions<AgentOptions> options, ILoggerFactory loggers, ILogger<JobLoop> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var me = await credentials.LoadOrEnrolAsync(stoppingToken);
        var scratch = Path.Combine(options.Value.StateDirectory, "scratch");
        Directory.CreateDirectory(scratch);
        log.LogInformation("Agent {AgentId} polling {Server} for jobs", me.AgentId, options.Value.Server);

        while (!stoppingToken.IsCancellationRequested)
        {
            AgentJob? job;
            try
            {
                job = await server.NextJobAsync(me.AgentId, stoppingToken);
            }
            catch (HttpRequestException e)
            {
                log.LogWarning("The server is unreachable ({Reason}); retrying", e.Message);
                await Task.Delay(options.Value.PollInterval, stoppingToken);
                continue;
            }
            if (job is null)
            {
                await Task.Delay(options.Value.PollInterval, stoppingToken);
                continue;
            }

            switch (job.Kind)
            {
                case AgentJobKind.Backup:
                    await WithHeartbeatAsync(me.AgentId, job, () => RunBackupAsync(me.AgentId, job, scratch, stoppingToken), stoppingToken);
                    break;
                case AgentJobKind.Restore:
                    await WithHeartbeatAsync(me.AgentId, job, () => RunRestoreAsync(me.AgentId, job, scratch, stoppingToken), stoppingToken);
                    break;
                default:
                    log.LogError("Job {JobId} has kind {Kind}, which this agent does not know", job.JobId, job.Kind);
                    break;
            }
        }
    }

    /// <summary>Keeps the job's lease alive (a heartbeat every third of it) for as long as <paramref name="run"/> runs.</summary>
    private async Task WithHeartbeatAsync(Guid agentId, AgentJob job, Func<Task> run, CancellationToken ct)
    {
        using var jobEnded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var beats = job.LeaseSeconds > 0
            ? HeartbeatsAsync(agentId, job.JobId, TimeSpan.FromSeconds(job.LeaseSeconds) / 3, jobEnded.Token)
            : Task.CompletedTask;
        try
        {
            await run();
        }
        finally
        {
            await jobEnded.CancelAsync();
            await beats;
        }
    }

    private async Task HeartbeatsAsync(Guid agentId, Guid jobId, TimeSpan every, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(every, ct);
                try
                {
                    await server.HeartbeatAsync(agentId, jobId, ct);
                }
                catch (Exception e) when (e is HttpRequestException or ServerRejectedException)
                {
                    // A missed beat is not fatal: the lease is three beats long. A rejected one means the lease is gone.
                    log.LogWarning("Heartbeat for job {JobId} failed: {Reason}", jobId, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The job ended.
        }
    }

    private async Task RunBackupAsync(Guid agentId, AgentJob job, string scratch, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        log.LogInformation("Backup {RecoveryPointId} of {Path} started", job.RecoveryPointId, job.Path);
        try
        {
            await using var packs = new PackWriter(scratch, options.Value.PackTargetBytes, async (file, packId, _) =>
            {
                var stored = await server.UploadPackAsync(agentId, job.RecoveryPointId, packId, file, ct);
                log.LogInformation("Pack {PackId} stored ({Bytes} bytes{Note})", packId[..12], stored.Bytes, stored.AlreadyPresent ? ", already on the server" : "");
            });
            var lastReport = Stopwatch.StartNew();
            var result = await new Archiver(loggers.CreateLogger<Archiver>()).ArchiveAsync(job.RecoveryPointId, job.Path, packs, (bytes, files) =>
            {
                if (lastReport.Elapsed < TimeSpan.FromSeconds(2)) return;
                lastReport.Restart();
                log.LogInformation("Backup {RecoveryPointId}: {Files} files, {MiB:F1} MiB read", job.RecoveryPointId, files, bytes / 1048576.0);
            }, ct);
            await server.CompleteBackupAsync(agentId, job.RecoveryPointId, result.Manifest, ct);
            log.LogInformation(
                "Backup {RecoveryPointId} done: {Files} files, {Dirs} directories, {MiB:F1} MiB in {Packs} packs, {Skipped} skipped, {Seconds:F1} s",
                job.RecoveryPointId, result.Files, result.Directories, result.BytesRead / 1048576.0, result.Packs,
                result.Manifest.Skipped?.Count ?? 0, clock.Elapsed.TotalSeconds);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "Backup {RecoveryPointId} failed", job.RecoveryPointId);
            await ReportAsync(() => server.FailBackupAsync(agentId, job.RecoveryPointId, e.Message, ct));
        }
    }

    private async Task RunRestoreAsync(Guid agentId, AgentJob job, string scratch, CancellationToken ct)
    {
        log.LogInformation("Restore {RestoreId} of recovery point {RecoveryPointId} to {Path} started", job.JobId, job.RecoveryPointId, job.Path);
        try
        {
            var manifest = await server.RestoreManifestAsync(agentId, job.JobId, ct);
            var result = await new Restorer(loggers.CreateLogger<Restorer>()).RestoreAsync(
                manifest, job.Path, scratch, (packId, destination, token) => server.DownloadPackAsync(agentId, job.JobId, packId, destination, token),
                new RestoreOptions(job.Paths, job.IfExists), ct);
            await server.CompleteRestoreAsync(agentId, job.JobId, result.Files, result.Bytes, result.SkippedExisting, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "Restore {RestoreId} failed", job.JobId);
            await ReportAsync(() => server.FailRestoreAsync(agentId, job.JobId, e.Message, ct));
        }
    }

    private async Task ReportAsync(Func<Task> report)
    {
        try
        {
            await report();
        }
        catch (Exception e) when (e is HttpRequestException or ServerRejectedException)
        {
            log.LogError(e, "Could not report the failure to the server");
        }
    }
}
