using System.Diagnostics;
using System.Net;
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
                    await WithLeaseAsync(me.AgentId, job, scratch, (jobScratch, ct) => RunBackupAsync(me.AgentId, job, jobScratch, ct), stoppingToken);
                    break;
                case AgentJobKind.Restore:
                    await WithLeaseAsync(me.AgentId, job, scratch, (jobScratch, ct) => RunRestoreAsync(me.AgentId, job, jobScratch, ct), stoppingToken);
                    break;
                default:
                    log.LogError("Job {JobId} has kind {Kind}, which this agent does not know", job.JobId, job.Kind);
                    break;
            }
        }
    }

    /// <summary>
    /// Runs a job in a scratch folder of its own while keeping its lease alive (a heartbeat every third of it). When the
    /// server refuses a heartbeat because the job is no longer ours (409: the lease expired and the job was re-queued or
    /// failed; 403/404), the run is cancelled: no further upload, no report, and its scratch files are removed, so a
    /// job the server has taken back is never completed or failed by a run it no longer recognises.
    /// </summary>
    private async Task WithLeaseAsync(Guid agentId, AgentJob job, string scratch, Func<string, CancellationToken, Task> run, CancellationToken stoppingToken)
    {
        using var leaseLost = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var jobEnded = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var jobScratch = Directory.CreateDirectory(Path.Combine(scratch, job.JobId.ToString("N"))).FullName;
        var beats = job.LeaseSeconds > 0
            ? HeartbeatsAsync(agentId, job.JobId, TimeSpan.FromSeconds(job.LeaseSeconds) / 3, leaseLost, jobEnded.Token)
            : Task.CompletedTask;
        try
        {
            await run(jobScratch, leaseLost.Token);
        }
        catch (Exception e) when (leaseLost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
        {
            log.LogDebug(e, "Job {JobId} stopped after its lease was lost", job.JobId);
        }
        finally
        {
            await jobEnded.CancelAsync();
            await beats;
            DeleteScratch(jobScratch);
        }
        if (leaseLost.IsCancellationRequested && !stoppingToken.IsCancellationRequested)
            log.LogWarning("Job {JobId} abandoned: the server no longer holds its lease for this agent; nothing was reported", job.JobId);
    }

    private async Task HeartbeatsAsync(Guid agentId, Guid jobId, TimeSpan every, CancellationTokenSource leaseLost, CancellationToken ct)
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
                catch (ServerRejectedException e) when (LeaseGone(e.Status))
                {
                    log.LogWarning("Heartbeat for job {JobId} refused ({Status}): the lease is gone; cancelling the job", jobId, (int)e.Status);
                    await leaseLost.CancelAsync();
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or ServerRejectedException)
                {
                    // A missed beat is not fatal: the lease is three beats long.
                    log.LogWarning("Heartbeat for job {JobId} failed: {Reason}", jobId, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The job ended.
        }
    }

    private static bool LeaseGone(HttpStatusCode status) =>
        status is HttpStatusCode.Conflict or HttpStatusCode.Forbidden or HttpStatusCode.NotFound;

    /// <summary>
    /// Before a failure is reported, one more heartbeat asks whether the job is still ours: an upload refused because the
    /// lease expired a moment ago must not fail a job the server has already queued again.
    /// </summary>
    private async Task<bool> StillOursAsync(Guid agentId, Guid jobId, Exception failure, CancellationToken ct)
    {
        try
        {
            await server.HeartbeatAsync(agentId, jobId, ct);
            return true;
        }
        catch (ServerRejectedException e) when (LeaseGone(e.Status))
        {
            log.LogDebug(failure, "Job {JobId} stopped after its lease was lost", jobId);
            log.LogWarning("Job {JobId} abandoned: the server no longer holds its lease for this agent ({Status}); nothing was reported", jobId, (int)e.Status);
            return false;
        }
        catch (HttpRequestException)
        {
            return true; // Unknown: report, and let the server decide.
        }
    }

    private void DeleteScratch(string jobScratch)
    {
        try
        {
            Directory.Delete(jobScratch, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.LogWarning("Could not remove the scratch folder {Path}: {Reason}", jobScratch, e.Message);
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
        catch (Exception e) when (e is not OperationCanceledException && !ct.IsCancellationRequested)
        {
            if (!await StillOursAsync(agentId, job.JobId, e, ct)) return;
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
        catch (Exception e) when (e is not OperationCanceledException && !ct.IsCancellationRequested)
        {
            if (!await StillOursAsync(agentId, job.JobId, e, ct)) return;
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
