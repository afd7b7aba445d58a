using Backup.Agent.BackingUp;
using Backup.Agent.Enrolling;
using Backup.Storage.Contracts;
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
    Credentials credentials, RepositoryKeys keyRing, ServerClient server, IEnumerable<IJobRunner> runners, IOptions<AgentOptions> options, ILogger<JobLoop> log)
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
        var runner = runners.FirstOrDefault(r => r.Runs(job));
        if (runner is null)
        {
            // The lease runs out on the server, which fails the job there: an agent that does not know the work cannot say more.
            log.LogError("Job {JobId} has kind {Kind}, which this agent does not know", job.JobId, job.Kind);
            return;
        }
        await WithLeaseAsync(agentId, job, scratch, (jobScratch, ct) => runner.RunAsync(new JobRun(agentId, job, jobScratch, server, keyRing, log), ct), stoppingToken);
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
        catch (ServerRejectedException e) when (JobRun.LeaseGone(e.Status))
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
                catch (ServerRejectedException e) when (JobRun.LeaseGone(e.Status))
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
}
