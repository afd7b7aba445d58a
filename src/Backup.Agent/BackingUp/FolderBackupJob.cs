using System.Diagnostics;
using Backup.Agent.Jobs;
using Backup.Storage.Contracts;
using Backup.Storage.Filtering;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Backup.Agent.BackingUp;

/// <summary>
/// Backs up a protected folder (job kind <see cref="JobKind.Backup"/>) or ships its changes between recovery points
/// (<see cref="JobKind.Synchronisation"/>).
/// </summary>
public sealed class FolderBackupJob(ServerClient server, IOptions<AgentOptions> options, ILoggerFactory loggers, ILogger<FolderBackupJob> log) : IJobRunner
{
    public bool Runs(AgentJob job) => job.Kind is JobKind.Backup or JobKind.Synchronisation;

    /// <summary>Where a backup's or a synchronisation's packs and commit go: <c>recovery-points/{id}</c> or <c>syncs/{id}</c>.</summary>
    private static string JobPath(AgentJob job) =>
        job.Kind == JobKind.Synchronisation ? $"syncs/{job.JobId}" : $"recovery-points/{job.RecoveryPointId}";

    /// <summary>
    /// A backup, or a synchronisation: the same walk, read, chunk, seal and upload, and the metadata cache refreshed; a
    /// backup's commit creates the recovery point, a synchronisation's only records what the server now holds (its packs are
    /// kept for the next recovery point, which then has only the changes since to read and send).
    /// </summary>
    public async Task RunAsync(JobRun run, CancellationToken ct)
    {
        var (agentId, job) = (run.AgentId, run.Job);
        var clock = Stopwatch.StartNew();
        var what = job.Kind == JobKind.Synchronisation ? "Synchronisation" : "Backup";
        var jobPath = JobPath(job);
        log.LogInformation("{What} {JobId} of {Path} started", what, job.JobId, job.Path);
        try
        {
            // A pattern this agent cannot honour fails the job before anything is read, rather than backing up too much or too little.
            var filter = PathFilter.Create(job.Include, job.Exclude);
            var keys = await run.KeysAsync(ct);
            var keyTime = clock.Elapsed;
            var known = await server.KnownChunksAsync(agentId, ct);
            var indexTime = clock.Elapsed;
            var cachePath = MetadataCache.PathFor(options.Value.StateDirectory, job.Path);
            using var cache = MetadataCache.Load(cachePath, out var cacheProblem);
            if (cacheProblem is not null) log.LogWarning("{What} {JobId}: {Problem}", what, job.JobId, cacheProblem);
            await using var pipeline = new ChunkPipeline(keys, known, run.Scratch, options.Value.PackTargetBytes, async (file, packId, chunks, token) =>
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
            await run.FailAsync(what, e, token => server.FailBackupAsync(agentId, jobPath, e.Message, token), ct);
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
}
