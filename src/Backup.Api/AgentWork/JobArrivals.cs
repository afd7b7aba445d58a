using System.Collections.Concurrent;
using Backup.Commands.Dispatching;
using Npgsql;

namespace Backup.Api.AgentWork;

/// <summary>
/// Wakes an agent's held poll (<c>jobs/next?wait=</c>) when a job is queued for it. One signal per agent, taken before the
/// poll looks at its queue, so a job queued while it looks still wakes it. Fed only by <see cref="JobArrivalListener"/>: a job
/// queued by this process arrives the same way as one queued by the workers, through PostgreSQL.
/// </summary>
public sealed class JobArrivals
{
    private readonly ConcurrentDictionary<Guid, TaskCompletionSource> _signals = new();

    /// <summary>Completes when a job is next queued for <paramref name="agentId"/> (or when every poll must look again).</summary>
    public Task Next(Guid agentId) =>
        _signals.GetOrAdd(agentId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    public void Arrived(Guid agentId)
    {
        if (_signals.TryRemove(agentId, out var signal)) signal.TrySetResult();
    }

    /// <summary>Notifications may have been missed (the listener was not connected): every held poll looks at its queue again.</summary>
    public void MayHaveMissedSome()
    {
        foreach (var agentId in _signals.Keys) Arrived(agentId);
    }
}

/// <summary>
/// LISTENs on <see cref="JobQueuedNotifier.Channel"/> on one connection of its own and passes each agent id to
/// <see cref="JobArrivals"/>. A lost connection is opened again with backoff; until then held polls end at their timeout
/// as plain polls would, and once it is back every held poll looks again (what was queued meanwhile sent no signal it heard).
/// </summary>
public sealed class JobArrivalListener(string connectionString, JobArrivals arrivals, ILogger<JobArrivalListener> log) : BackgroundService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1), LastRetry = TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Keepalive: a connection that died without a word (a dropped network path) would otherwise wait for notifications forever.
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { KeepAlive = 15, ApplicationName = "backup-api job arrivals" };
        var retry = FirstRetry;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(builder.ConnectionString);
                await connection.OpenAsync(stoppingToken);
                connection.Notification += (_, n) =>
                {
                    if (Guid.TryParse(n.Payload, out var agentId)) arrivals.Arrived(agentId);
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {JobQueuedNotifier.Channel}", connection))
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                arrivals.MayHaveMissedSome();
                retry = FirstRetry;
                while (true) await connection.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                log.LogWarning("Not listening for queued jobs ({Reason}); held polls end at their timeout. Trying again in {Seconds:F0} s", e.Message, retry.TotalSeconds);
                arrivals.MayHaveMissedSome();
                await Task.Delay(retry, stoppingToken);
                retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, LastRetry.Ticks));
            }
        }
    }
}
