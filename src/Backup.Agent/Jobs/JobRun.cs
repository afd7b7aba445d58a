using System.Net;
using Backup.Agent.Enrolling;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.Jobs;

/// <summary>
/// One kind of agent work, in a folder of its own (backing up, restoring, …) and registered once in Program.cs. The
/// <see cref="JobLoop"/> hands it every job it <see cref="Runs"/>, inside the job's lease (heartbeats, release on stop) and
/// scratch folder; the runner reports the job's end (complete or fail) itself.
/// </summary>
public interface IJobRunner
{
    /// <summary>Whether this runner runs <paramref name="job"/>: by its kind and, for work on a data source, the source's kind.</summary>
    bool Runs(AgentJob job);

    /// <summary>Runs the job to its report. Cancelled when the lease is lost or the agent stops: then nothing is reported.</summary>
    Task RunAsync(JobRun run, CancellationToken ct);
}

/// <summary>A job being run: its lease holder, its scratch folder, and what every kind of job needs (keys, a failure report).</summary>
public sealed class JobRun(Guid agentId, AgentJob job, string scratch, ServerClient server, RepositoryKeys keyRing, ILogger log)
{
    public Guid AgentId => agentId;
    public AgentJob Job => job;

    /// <summary>A folder of the job's own, removed when it ends.</summary>
    public string Scratch => scratch;

    /// <summary>The repository's master keys, unwrapped here; a clear error when the server has no key or the passphrase is wrong.</summary>
    public async Task<MasterKeys> KeysAsync(CancellationToken ct)
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
    /// Reports a failed run through <paramref name="report"/>, unless the job is no longer ours: before a failure is reported,
    /// one more heartbeat asks, so an upload refused because the lease expired a moment ago does not fail a job the server
    /// has already queued again. A report that cannot be sent leaves the job to its lease.
    /// </summary>
    public async Task FailAsync(string what, Exception failure, Func<CancellationToken, Task> report, CancellationToken ct)
    {
        if (!await StillOursAsync(failure, ct)) return;
        log.LogError(failure, "{What} {JobId} failed", what, job.JobId);
        try
        {
            await report(ct);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            log.LogError(e, "Could not report the failure to the server; it takes the job back when its lease runs out");
        }
    }

    private async Task<bool> StillOursAsync(Exception failure, CancellationToken ct)
    {
        try
        {
            await server.HeartbeatAsync(agentId, job.JobId, ct);
            return true;
        }
        catch (ServerRejectedException e) when (LeaseGone(e.Status))
        {
            log.LogDebug(failure, "Job {JobId} stopped after its lease was lost", job.JobId);
            log.LogWarning("Job {JobId} abandoned: the server no longer holds its lease for this agent ({Status}); nothing was reported", job.JobId, (int)e.Status);
            return false;
        }
        catch (Exception e) when (!ct.IsCancellationRequested && e is not ServerRejectedException { Status: < HttpStatusCode.InternalServerError })
        {
            return true; // Unknown (unreachable, failing): report, and let the server decide.
        }
    }

    /// <summary>The server's answers that mean the job is no longer this agent's running job.</summary>
    public static bool LeaseGone(HttpStatusCode status) =>
        status is HttpStatusCode.Conflict or HttpStatusCode.Forbidden or HttpStatusCode.NotFound;
}
