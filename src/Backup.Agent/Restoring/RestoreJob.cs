using System.Diagnostics;
using Backup.Agent.Jobs;
using Backup.Storage.Contracts;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.Restoring;

/// <summary>Restores items of a recovery point (job kind <see cref="JobKind.Restore"/>) to a folder on this machine.</summary>
public sealed class RestoreJob(ServerClient server, ILoggerFactory loggers, ILogger<RestoreJob> log) : IJobRunner
{
    public bool Runs(AgentJob job) => job.Kind == JobKind.Restore;

    public async Task RunAsync(JobRun run, CancellationToken ct)
    {
        var (agentId, job) = (run.AgentId, run.Job);
        log.LogInformation("Restore {RestoreId} of recovery point {RecoveryPointId} to {Path} started", job.JobId, job.RecoveryPointId, job.Path);
        var clock = Stopwatch.StartNew();
        try
        {
            var keys = await run.KeysAsync(ct);
            var manifest = await server.RestoreManifestAsync(agentId, job.JobId, ct);
            var index = await server.RestoreIndexAsync(agentId, job.JobId, ct);
            var result = await new Restorer(loggers.CreateLogger<Restorer>()).RestoreAsync(
                manifest, index, keys, job.Path, run.Scratch, (packId, destination, token) => server.DownloadPackAsync(agentId, job.JobId, packId, destination, false, token),
                new RestoreOptions(job.Paths, job.IfExists, (packId, destination, token) => server.DownloadPackAsync(agentId, job.JobId, packId, destination, true, token)), ct);
            await server.CompleteRestoreAsync(agentId, job.JobId, result.Files, result.Bytes, result.SkippedExisting, result.Failed, ct);
            log.LogInformation("Restore {RestoreId} done in {Seconds:F2} s: {Files} files, {MiB:F1} MiB, every chunk verified; {Failed} items could not be written",
                job.JobId, clock.Elapsed.TotalSeconds, result.Files, result.Bytes / 1048576.0, result.Failed?.Count ?? 0);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            await run.FailAsync("Restore", e, token => server.FailRestoreAsync(agentId, job.JobId, e.Message, token), ct);
        }
    }
}
