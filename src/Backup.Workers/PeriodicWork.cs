namespace Backup.Workers;

/// <summary>The loop every timed worker runs: once at start, then at each tick of the injected clock, until stopped.</summary>
public static class PeriodicWork
{
    /// <summary>
    /// Runs <paramref name="work"/> with the clock's time now and at every <paramref name="interval"/>. A failed round
    /// (the database briefly down) is logged and the next round tries again: each worker's round is written so that
    /// repeating it is harmless (deterministic ids, appends at the version read).
    /// </summary>
    public static async Task RunAsync(
        TimeProvider clock, TimeSpan interval, Func<DateTimeOffset, CancellationToken, Task> work, ILogger log, string what, CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval, clock);
        do
        {
            try
            {
                await work(clock.GetUtcNow(), stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log.LogError(e, "{What} failed; trying again in {Interval}", what, interval);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
