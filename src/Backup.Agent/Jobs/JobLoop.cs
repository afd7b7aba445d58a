using System.Diagnostics;
using System.Net;
using Backup.Agent.BackingUp;
using Backup.Agent.Enrolling;
using Backup.Agent.Restoring;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Filtering;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Backup.Agent.Jobs;

/// <summary>
/// Polls the server for jobs and runs them one at a time. A failed job is reported, never dropped. Nothing the server does
/// (unreachable, failing, timing out) ends the loop: enrolment and polling are tried again with backoff, and a job that ends
/// without a report is left to its lease, which the server's reaper re-queues.
/// </summary>
public sealed class JobLoop(
    Credentials credentials, RepositoryKeys keyRing, ServerClient server, IOptions<AgentOptions> options, ILoggerFactory loggers, ILogger<JobLoop> log)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var me = await EnrolAsync(stoppingToken);
        var scratch = Path.Combine(options.Value.StateDirectory, "scratch");
        Directory.CreateDirectory(scratch);
        foreach (var problem in MetadataCache.RemoveLeftovers(options.Value.StateDirectory))
            log.LogWarning("Could not remove a temporary file an earlier run left: {Problem}", problem);
        log.LogInformation("Agent {AgentId} polling {Server} for jobs", me.AgentId, options.Value.Server);

        var wait = options.Value.PollInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            AgentJob? job;
            bool held;
            try
            {
                (job, held) = await server.NextJobAsync(me.AgentId, options.Value.PollWait, stoppingToken);
                wait = options.Value.PollInterval;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever the answer (unreachable, 5xx, even a refusal an operator may yet fix): keep asking, ever less often.
                log.LogWarning("Could not poll the server for jobs ({Reason}); polling again in {Seconds:F1} s", e.Message, wait.TotalSeconds);
                await Task.Delay(wait, stoppingToken);
                wait = Longer(wait);
                continue;
            }
            if (job is null)
            {
                // A held poll already waited; an older server's answer came at once.
                if (!held) await Task.Delay(options.Value.PollInterval, stoppingToken);
                continue;
            }

            try
            {
                await RunJobAsync(me.AgentId, job, scratch, stoppingToken);
            }
            catch (Exception e) when (stoppingToken.IsCancellationRequested)
            {
                // Stopping: the run was cancelled (however the interrupted call reported it) and its job released.
                log.LogDebug(e, "Job {JobId} interrupted: the agent is stopping", job.JobId);
                return;
            }
            catch (Exception e)
            {
                // Not the end of the agent: the job's lease runs out on the server, which queues it again (or fails it).
                log.LogError(e, "Job {JobId} ended without a report; the server takes it back when its lease runs out", job.JobId);
            }
            finally
            {
                // Between jobs the agent is idle: hand the job's large buffers back to the system rather than keep them
                // resident until some later collection (they live in the large object heap, collected only in gen 2), and
                // the C heap's free pages too (zstd and OpenSSL contexts of the job's threads; measured: 8-10 MB less between jobs).
                System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                Backup.Agent.Memory.NativeHeap.Trim();
            }
        }
    }

    /// <summary>The saved credential, or a new one; a server that cannot be reached or fails is asked again, ever less often.</summary>
    private async Task<AgentCredential> EnrolAsync(CancellationToken stoppingToken)
    {
        var wait = options.Value.PollInterval;
        while (true)
        {
            try
            {
                return await credentials.LoadOrEnrolAsync(stoppingToken);
            }
            catch (Exception e) when (ServerClient.IsTransient(e, stoppingToken))
            {
                log.LogWarning("Could not enrol ({Reason}); asking again in {Seconds:F1} s", e.Message, wait.TotalSeconds);
                await Task.Delay(wait, stoppingToken);
                wait = Longer(wait);
            }
        }
    }

    private TimeSpan Longer(TimeSpan wait) => TimeSpan.FromTicks(Math.Min(wait.Ticks * 2, Math.Max(options.Value.MaxPollBackoff.Ticks, options.Value.PollInterval.Ticks)));

    private async Task RunJobAsync(Guid agentId, AgentJob job, string scratch, CancellationToken stoppingToken)
    {
        switch (job.Kind)
        {
            case JobKind.Backup or JobKind.Synchronisation:
                await WithLeaseAsync(agentId, job, scratch, (jobScratch, ct) => RunBackupAsync(agentId, job, jobScratch, ct), stoppingToken);
                break;
            case JobKind.Restore:
                await WithLeaseAsync(agentId, job, scratch, (jobScratch, ct) => RunRestoreAsync(agentId, job, jobScratch, ct), stoppingToken);
                break;
            default:
                log.LogError("Job {JobId} has kind {Kind}, which this agent does not know", job.JobId, job.Kind);
                break;
        }
    }

    /// <summary>
    /// Runs a job in a scratch folder of its own while keeping its lease alive (a heartbeat every third of it). When the
    /// server refuses a heartbeat because the job is no longer ours (409: the lease expired and the job was re-queued or
    /// failed; 403/404), the run is cancelled: no further upload, no report, and its scratch files are removed, so a
    /// job the server has taken back is never completed or failed by a run it no longer recognises.
    /// When the agent itself is stopping (SIGTERM, service stop), the run is cancelled the same way and, once it has stopped
    /// sending, the job is released: the server queues it again at once instead of waiting for the lease to run out.
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
        catch (Exception) when (stoppingToken.IsCancellationRequested)
        {
            await jobEnded.CancelAsync();
            await beats;
            await ReleaseAsync(agentId, job.JobId);
            throw;
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

    /// <summary>
    /// Hands the interrupted job back. Runs after the stop was requested, so on a token of its own, bounded well inside the
    /// host's shutdown timeout; a server that cannot be reached leaves the job to the lease reaper, as before.
    /// </summary>
    private async Task ReleaseAsync(Guid agentId, Guid jobId)
    {
        using var limit = new CancellationTokenSource(options.Value.ReleaseTimeout);
        try
        {
            await server.ReleaseJobAsync(agentId, jobId, "agent stopping", limit.Token);
            log.LogInformation("Job {JobId} released: the agent is stopping; the server queued it again", jobId);
        }
        catch (ServerRejectedException e) when (LeaseGone(e.Status))
        {
            log.LogInformation("Job {JobId} was not released ({Status}): it is no longer this agent's running job", jobId, (int)e.Status);
        }
        catch (Exception e) when (e is HttpRequestException or ServerRejectedException or OperationCanceledException)
        {
            log.LogWarning("Job {JobId} could not be released ({Reason}); it goes back to the queue when its lease runs out", jobId, e.Message);
        }
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
                catch (Exception e) when (!ct.IsCancellationRequested)
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
        catch (Exception e) when (!ct.IsCancellationRequested && e is not ServerRejectedException { Status: < HttpStatusCode.InternalServerError })
        {
            return true; // Unknown (unreachable, failing): report, and let the server decide.
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

    /// <summary>The repository's master keys, unwrapped here; a clear error when the server has no key or the passphrase is wrong.</summary>
    private async Task<MasterKeys> KeysAsync(Guid agentId, CancellationToken ct)
    {
        var keyFile = await server.KeyFileAsync(agentId, ct)
            ?? throw new InvalidOperationException("The backup server has no repository key yet: an administrator must set the passphrase (PUT /api/repository/key).");
        try
        {
            return keyRing.Unlock(keyFile);
        }
        catch (WrongPassphraseException)
        {
            throw new InvalidOperationException("The agent's passphrase does not open the repository key: it is wrong or was changed on the server. Nothing was read or sent.");
        }
    }

    /// <summary>
    /// A backup, or a synchronisation: the same walk, read, chunk, seal and upload, and the metadata cache refreshed; a
    /// backup's commit creates the recovery point, a synchronisation's only records what the server now holds (its packs are
    /// kept for the next recovery point, which then has only the changes since to read and send).
    /// </summary>
    private async Task RunBackupAsync(Guid agentId, AgentJob job, string scratch, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var what = job.Kind == JobKind.Synchronisation ? "Synchronisation" : "Backup";
        var jobPath = ServerClient.JobPath(job);
        log.LogInformation("{What} {JobId} of {Path} started", what, job.JobId, job.Path);
        try
        {
            // A pattern this agent cannot honour fails the job before anything is read, rather than backing up too much or too little.
            var filter = PathFilter.Create(job.Include, job.Exclude);
            var keys = await KeysAsync(agentId, ct);
            var keyTime = clock.Elapsed;
            var known = await server.KnownChunksAsync(agentId, ct);
            var indexTime = clock.Elapsed;
            var cachePath = MetadataCache.PathFor(options.Value.StateDirectory, job.Path);
            using var cache = MetadataCache.Load(cachePath, out var cacheProblem);
            if (cacheProblem is not null) log.LogWarning("{What} {JobId}: {Problem}", what, job.JobId, cacheProblem);
            await using var pipeline = new ChunkPipeline(keys, known, scratch, options.Value.PackTargetBytes, async (file, packId, chunks, token) =>
            {
                var stored = await server.UploadPackAsync(agentId, jobPath, packId, file, token);
                log.LogInformation("Pack {PackId} stored ({Chunks} chunks, {Bytes} bytes{Note})", packId[..12], chunks, stored.Bytes, stored.AlreadyPresent ? ", already on the server" : "");
            }, options.Value.SealingThreads, options.Value.CompressionLevel, ct);
            var lastReport = Stopwatch.StartNew();
            var result = await new Archiver(loggers.CreateLogger<Archiver>()).ArchiveAsync(job.Path, pipeline, known, cache, filter, (bytes, files) =>
            {
                if (lastReport.Elapsed < TimeSpan.FromSeconds(2)) return;
                lastReport.Restart();
                log.LogInformation("{What} {JobId}: {Files} files, {MiB:F1} MiB", what, job.JobId, files, bytes / 1048576.0);
            }, ct);
            var archiveTime = clock.Elapsed;
            if (cache.Problem is not null) log.LogWarning("{What} {JobId}: {Problem}", what, job.JobId, cache.Problem);
            await CommitAsync(agentId, job, jobPath, result, ItemSnapshot.PathFor(cachePath), what, ct);
            var commitTime = clock.Elapsed;
            cache.Save();
            log.LogInformation("{What} {JobId} phases: key {Key:F2} s, {Known} known chunk ids {Index:F2} s, walk/read/upload {Archive:F2} s, commit {Commit:F2} s",
                what, job.JobId, keyTime.TotalSeconds, known.Count, (indexTime - keyTime).TotalSeconds, (archiveTime - indexTime).TotalSeconds,
                (commitTime - archiveTime).TotalSeconds);
            var p = result.Pipeline;
            log.LogInformation(
                "{What} {JobId} done in {Seconds:F2} s: {Files} files ({Cached} unchanged, not read), {Dirs} directories, {MiB:F1} MiB, "
                + "{ScannedMiB:F1} MiB read, {NewChunks}/{Chunks} chunks new ({NewMiB:F1} MiB, {SealedMiB:F1} MiB after compression) in {Packs} packs, {Skipped} skipped",
                what, job.JobId, clock.Elapsed.TotalSeconds, result.Files, result.FilesFromCache, result.Directories, result.BytesRead / 1048576.0,
                result.BytesScanned / 1048576.0, p.ChunksNew, p.ChunksSeen, p.PlainBytesNew / 1048576.0, p.SealedBytesNew / 1048576.0, p.Packs,
                result.Tree.Skipped?.Count ?? 0);
            log.LogInformation("{What} {JobId} stage waits: reader for sealers {Reader:F2} s, sealers for uploaders {Sealers:F2} s; uploads took {Upload:F2} s",
                what, job.JobId, p.Waits.ReaderWaitedForSealers, p.Waits.SealersWaitedForUploaders, p.Waits.UploadSeconds);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            if (!await StillOursAsync(agentId, job.JobId, e, ct)) return;
            log.LogError(e, "{What} {JobId} failed", what, job.JobId);
            await ReportAsync(() => server.FailBackupAsync(agentId, jobPath, e.Message, ct), ct);
        }
    }

    /// <summary>
    /// Commits the run. A backup's items go to the server's catalog as changes against the last recovery point this agent
    /// committed for the folder (its <see cref="ItemSnapshot"/>), or whole when there is no usable snapshot or the server says
    /// the catalog has moved on (409 <c>item-catalog-base-changed</c>, nothing committed): then the commit is sent again with
    /// every item. A synchronisation adds nothing to the catalog and leaves the snapshot as it is.
    /// </summary>
    private async Task CommitAsync(Guid agentId, AgentJob job, string jobPath, ArchiveResult result, string snapshotPath, string what, CancellationToken ct)
    {
        var tree = result.TreeChunks.Select(c => c.ToString()).ToList();
        Task Send(IReadOnlyList<Storage.Format.TreeEntry> items, CatalogChanges? changes) =>
            server.CompleteBackupAsync(agentId, jobPath, tree, result.Referenced, result.Files, result.Directories, result.BytesRead,
                result.Tree.Skipped, items, changes, ct);

        if (job.Kind == JobKind.Synchronisation)
        {
            await Send([], null);
            return;
        }
        var changes = ItemSnapshot.Changes(snapshotPath, result.Tree.Entries, out var problem);
        if (problem is not null) log.LogWarning("{What} {JobId}: {Problem}", what, job.JobId, problem);
        try
        {
            await Send(result.Tree.Entries, changes);
        }
        catch (ServerRejectedException e) when (changes is not null && e.Code == CatalogChanges.BaseChangedCode)
        {
            log.LogInformation("{What} {JobId}: the server's item catalog is not where this agent left it ({Reason}); sending every item",
                what, job.JobId, e.Message);
            await Send(result.Tree.Entries, null);
        }
        // Only once the server holds the point: a snapshot ahead of the catalog would make the next changes wrong. A snapshot
        // that cannot be written must not fail a committed backup: without one, the next backup sends every item.
        try
        {
            ItemSnapshot.Save(snapshotPath, job.JobId, result.Tree.Entries); // a backup's job id is its recovery point's
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.LogWarning("{What} {JobId}: the item snapshot could not be written ({Reason}); the next backup sends every item", what, job.JobId, e.Message);
            ItemSnapshot.Delete(snapshotPath);
        }
    }

    private async Task RunRestoreAsync(Guid agentId, AgentJob job, string scratch, CancellationToken ct)
    {
        log.LogInformation("Restore {RestoreId} of recovery point {RecoveryPointId} to {Path} started", job.JobId, job.RecoveryPointId, job.Path);
        var clock = Stopwatch.StartNew();
        try
        {
            var keys = await KeysAsync(agentId, ct);
            var manifest = await server.RestoreManifestAsync(agentId, job.JobId, ct);
            var index = await server.RestoreIndexAsync(agentId, job.JobId, ct);
            var result = await new Restorer(loggers.CreateLogger<Restorer>()).RestoreAsync(
                manifest, index, keys, job.Path, scratch, (packId, destination, token) => server.DownloadPackAsync(agentId, job.JobId, packId, destination, token),
                new RestoreOptions(job.Paths, job.IfExists), ct);
            await server.CompleteRestoreAsync(agentId, job.JobId, result.Files, result.Bytes, result.SkippedExisting, result.Failed, ct);
            log.LogInformation("Restore {RestoreId} done in {Seconds:F2} s: {Files} files, {MiB:F1} MiB, every chunk verified; {Failed} items could not be written",
                job.JobId, clock.Elapsed.TotalSeconds, result.Files, result.Bytes / 1048576.0, result.Failed?.Count ?? 0);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            if (!await StillOursAsync(agentId, job.JobId, e, ct)) return;
            log.LogError(e, "Restore {RestoreId} failed", job.JobId);
            await ReportAsync(() => server.FailRestoreAsync(agentId, job.JobId, e.Message, ct), ct);
        }
    }

    private async Task ReportAsync(Func<Task> report, CancellationToken ct)
    {
        try
        {
            await report();
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            log.LogError(e, "Could not report the failure to the server; it takes the job back when its lease runs out");
        }
    }
}
