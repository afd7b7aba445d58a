using Microsoft.Extensions.Configuration;

namespace Backup.Commands.Common;

/// <summary>
/// <c>Backup:Clock</c>: for load tests only, runs the server's clock faster than real time so a day of schedules passes in
/// minutes. Every process of a run gets the same three values, so they agree on the time: at the real instant
/// <see cref="Epoch"/> the clock reads <see cref="Start"/>, and it advances <see cref="Speed"/> times as fast. Unset (the
/// default) is the system clock.
/// </summary>
public sealed class ClockOptions
{
    public const string Section = "Backup:Clock";

    public double Speed { get; set; } = 1;
    public DateTimeOffset? Start { get; set; }
    public DateTimeOffset? Epoch { get; set; }

    /// <summary>The system clock, or a <see cref="ScaledTimeProvider"/> when <c>Backup:Clock</c> asks for one.</summary>
    public static TimeProvider From(IConfiguration configuration)
    {
        var options = configuration.GetSection(Section).Get<ClockOptions>() ?? new ClockOptions();
        if (options is { Speed: 1, Start: null }) return TimeProvider.System;
        if (options.Speed is <= 0 or > 10_000) throw new InvalidOperationException($"{Section}:Speed must be above 0 and at most 10000.");
        var epoch = options.Epoch ?? DateTimeOffset.UtcNow;
        return new ScaledTimeProvider(options.Start ?? epoch, epoch, options.Speed);
    }
}

/// <summary>
/// Reads <c>start + (real now − epoch) × speed</c>; timers wait their span divided by the speed. A one-shot timer that the
/// system fires before its instant on this clock (real timers tick in milliseconds, and a millisecond is <see cref="Speed"/>
/// of these; the wall clock the reading follows may also lag the timer's) waits the rest, so a wait never ends early.
/// </summary>
public sealed class ScaledTimeProvider(DateTimeOffset start, DateTimeOffset epoch, double speed) : TimeProvider
{
    public double Speed => speed;

    public override DateTimeOffset GetUtcNow() => start + (System.GetUtcNow() - epoch) * speed;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new Timer(this, callback, state, dueTime, period);

    private TimeSpan Scale(TimeSpan span) => span == Timeout.InfiniteTimeSpan || span <= TimeSpan.Zero ? span : span / speed;

    private sealed class Timer : ITimer
    {
        private readonly ScaledTimeProvider _clock;
        private readonly TimerCallback _callback;
        private readonly object? _state;
        private readonly ITimer _inner;
        private readonly Lock _lock = new();
        private DateTimeOffset? _oneShotDue;

        public Timer(ScaledTimeProvider clock, TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            (_clock, _callback, _state) = (clock, callback, state);
            _inner = System.CreateTimer(_ => Fire(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            Change(dueTime, period);
        }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (_lock)
            {
                _oneShotDue = period == Timeout.InfiniteTimeSpan && dueTime != Timeout.InfiniteTimeSpan ? _clock.GetUtcNow() + dueTime : null;
                return _inner.Change(_clock.Scale(dueTime), _clock.Scale(period));
            }
        }

        private void Fire()
        {
            lock (_lock)
            {
                if (_oneShotDue is { } due && _clock.GetUtcNow() is var now && now < due)
                {
                    // Early on this clock: wait the rest (at least a real millisecond, the system timer's step).
                    var rest = _clock.Scale(due - now);
                    _inner.Change(rest < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : rest, Timeout.InfiniteTimeSpan);
                    return;
                }
                _oneShotDue = null;
            }
            _callback(_state);
        }

        public void Dispose() => _inner.Dispose();
        public ValueTask DisposeAsync() => _inner.DisposeAsync();
    }
}
