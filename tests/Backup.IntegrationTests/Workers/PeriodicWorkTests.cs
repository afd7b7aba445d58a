extern alias workers;
using Microsoft.Extensions.Logging.Abstractions;
using workers::Backup.Workers;

namespace Backup.IntegrationTests.Workers;

/// <summary>The loop of every timed worker: a failed round is followed by the next one, and only the worker's stop ends it.</summary>
public sealed class PeriodicWorkTests
{
    [Fact]
    public async Task A_round_cancelled_by_a_timeout_is_retried_and_only_the_stop_ends_the_loop()
    {
        var rounds = 0;
        var again = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var loop = PeriodicWork.RunAsync(TimeProvider.System, TimeSpan.FromMilliseconds(10), (_, _) =>
        {
            // A vault or HTTP call that timed out reports itself as a cancellation, though nobody is stopping.
            if (Interlocked.Increment(ref rounds) == 1) throw new TaskCanceledException("The operation was cancelled because it exceeded the configured timeout.");
            again.TrySetResult();
            return Task.CompletedTask;
        }, NullLogger.Instance, "Test work", stop.Token);

        await again.Task.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        loop.IsCompleted.ShouldBeFalse("the loop must outlive a round that timed out");

        await stop.CancelAsync();
        await Should.ThrowAsync<OperationCanceledException>(() => loop.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));
    }
}
