namespace Backup.Workers;

/// <summary>The loop every timed worker runs: once at start, then at each tick of the injected clock, until stopped.</summary>
public static class PeriodicWork
{
    /// <summary>
    /// Runs <paramref name="work"/> with the clock's time now and at every <paramref name="interval"/>. A failed round
    /// (the database briefly down) is logged and the next round tries again: each worker's round is written so that
    /// repeating it is harmless (deterministic ids, appends at the version read). When the worker stops, the round in
    /// progress is cancelled through the token and the loop ends: the next worker's round does what it left.
    /// <para>With <paramref name="leadership"/>, a round runs only while this worker leads the duty, so of several worker
    /// processes one does the work and the others stand by (a failed round gives the lead up, for another to try).</para>
    /// </summary>
    public static async Task RunAsync(
        TimeProvider clock, TimeSpan interval, Func<DateTimeOffset, CancellationToken, Task> work, ILogger log, string what,
        CancellationToken stoppingToken, Leadership? leadership = null)
    {
        using var timer = new PeriodicTimer(interval, clock);
        try
        {
            do
            {
                try
                {
                    if (leadership is null || await leadership.HoldAsync(stoppingToken)) await work(clock.GetUtcNow(), stoppingToken);
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    // Also a cancellation that is not ours (an HTTP or vault call that timed out): only the worker's stop ends the loop;
                    // anything else escaping would fault the service, and a faulted service stops the whole worker process.
                    log.LogError(e, "{What} failed; trying again in {Interval}", what, interval);
                    if (leadership is not null) await leadership.ResignAsync();
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        finally
        {
            if (leadership is not null) await leadership.ResignAsync();
        }
    }
}
