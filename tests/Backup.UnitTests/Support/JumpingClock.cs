namespace Backup.UnitTests.Support;

/// <summary>
/// A clock that never makes anyone wait: a timer asking for a delay moves the clock forward by that delay and fires at
/// once. So the time that passed on it is exactly the waiting the code under test asked for, however long the real work
/// took — what a rate limiter must be judged by.
/// </summary>
public sealed class JumpingClock(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        if (period != Timeout.InfiniteTimeSpan && period != TimeSpan.Zero)
            throw new NotSupportedException("A jumping clock fires one-shot timers only.");
        if (dueTime == Timeout.InfiniteTimeSpan) return new Fired();
        Interlocked.Add(ref _ticks, dueTime.Ticks);
        ThreadPool.QueueUserWorkItem(_ => callback(state));
        return new Fired();
    }

    private sealed class Fired : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => false;
        public void Dispose() { }
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
