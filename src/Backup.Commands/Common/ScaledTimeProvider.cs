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

/// <summary>Reads <c>start + (real now − epoch) × speed</c>; timers wait their span divided by the speed.</summary>
public sealed class ScaledTimeProvider(DateTimeOffset start, DateTimeOffset epoch, double speed) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => start + (System.GetUtcNow() - epoch) * speed;

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        new Timer(System.CreateTimer(callback, state, Scale(dueTime), Scale(period)), this);

    private TimeSpan Scale(TimeSpan span) => span == Timeout.InfiniteTimeSpan || span <= TimeSpan.Zero ? span : span / speed;

    private sealed class Timer(ITimer inner, ScaledTimeProvider clock) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period) => inner.Change(clock.Scale(dueTime), clock.Scale(period));
        public void Dispose() => inner.Dispose();
        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
