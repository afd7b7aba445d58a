namespace Backup.Commands.Dispatching;

/// <summary>The lease of a running job ran out: its agent stopped renewing it (crashed, lost, cut off). <see cref="Attempt"/> counts from 1.</summary>
public sealed record JobLeaseExpired(Guid JobId, Guid AgentId, int Attempt, string Reason, DateTimeOffset ExpiredAt);

/// <summary>A job whose lease expired goes back to its agent's queue; it is not handed out before <see cref="NotBefore"/>.</summary>
public sealed record JobRequeued(Guid JobId, Guid AgentId, int Attempt, DateTimeOffset NotBefore, DateTimeOffset RequeuedAt);

/// <summary>
/// The agent gave its running job back (it is stopping): the job is queued again at once, for its next poll. Not a lease
/// expiry: the agent said so, so it costs no attempt and no backoff.
/// </summary>
public sealed record JobReleased(Guid JobId, Guid AgentId, string Reason, DateTimeOffset ReleasedAt);

public sealed class JobLeaseOptions
{
    public const string Section = "Backup:JobLeases";

    /// <summary>How long a claimed job stays the agent's without a heartbeat; agents renew every third of it.</summary>
    public TimeSpan Duration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How often the worker looks for expired leases.</summary>
    public TimeSpan ReaperInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Expiries after which the job fails instead of being queued again.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Wait before the first re-queue is handed out; doubled per further attempt, up to <see cref="MaxRetryBackoff"/>.</summary>
    public TimeSpan RetryBackoff { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan MaxRetryBackoff { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A job its agent has not claimed this long after it was queued (or, after a lost lease, after it could be claimed
    /// again) fails: the agent is off or cut off, and a backup taken hours late is not the one the schedule wanted.
    /// </summary>
    public TimeSpan PickupTimeout { get; set; } = TimeSpan.FromHours(4);
}

/// <summary>Pure lease rules shared by the backup and restore deciders.</summary>
public static class JobLease
{
    public static string AgentLostReason(int expiries) => $"agent lost: lease expired {expiries} time{(expiries == 1 ? "" : "s")}";

    /// <summary>Why a job failed that its agent never claimed in time, with when the agent was last heard of.</summary>
    public static string NotPickedUpReason(TimeSpan timeout, DateTimeOffset waitingSince, DateTimeOffset? lastPolledAt) =>
        $"agent did not pick the job up within {timeout} of {waitingSince:O} (last poll: {(lastPolledAt is { } at ? at.ToString("O") : "never")})";

    public static TimeSpan Backoff(int attempt, TimeSpan first, TimeSpan max)
    {
        var factor = Math.Pow(2, Math.Clamp(attempt - 1, 0, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(first.Ticks * factor, max.Ticks));
        return delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
    }

    /// <summary>
    /// The events for a lease that ran out on its <paramref name="attempt"/>th expiry: the expiry, then either a re-queue
    /// (with backoff) or, at <see cref="JobLeaseOptions.MaxAttempts"/>, the failure built by <paramref name="fail"/>.
    /// </summary>
    public static object[] Expire(Guid jobId, Guid agentId, int attempt, JobLeaseOptions options, DateTimeOffset now, Func<string, object> fail)
    {
        var expired = new JobLeaseExpired(jobId, agentId, attempt, $"no heartbeat from agent {agentId} before the lease ran out", now);
        if (attempt >= Math.Max(1, options.MaxAttempts)) return [expired, fail(AgentLostReason(attempt))];
        return [expired, new JobRequeued(jobId, agentId, attempt, now + Backoff(attempt, options.RetryBackoff, options.MaxRetryBackoff), now)];
    }
}
