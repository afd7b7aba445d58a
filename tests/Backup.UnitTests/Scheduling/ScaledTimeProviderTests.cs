using Backup.Commands.Common;
using Microsoft.Extensions.Configuration;

namespace Backup.UnitTests.Scheduling;

/// <summary>The load tests' fast clock: every process given the same settings reads the same time, and waits shrink with it.</summary>
public sealed class ScaledTimeProviderTests
{
    private static readonly DateTimeOffset Start = new(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void It_reads_start_plus_the_real_time_since_the_epoch_times_the_speed()
    {
        var epoch = DateTimeOffset.UtcNow - TimeSpan.FromSeconds(10);
        var clock = new ScaledTimeProvider(Start, epoch, speed: 360);
        var now = clock.GetUtcNow();
        now.ShouldBeGreaterThanOrEqualTo(Start + TimeSpan.FromHours(1)); // 10 real seconds at 360x
        now.ShouldBeLessThan(Start + TimeSpan.FromHours(2));
        var second = new ScaledTimeProvider(Start, epoch, speed: 360).GetUtcNow();
        (second - now).ShouldBeLessThan(TimeSpan.FromMinutes(10), "two processes with the same settings agree on the time");
    }

    [Fact]
    public async Task A_wait_of_a_simulated_day_ends_long_before_a_real_one()
    {
        var clock = new ScaledTimeProvider(Start, DateTimeOffset.UtcNow, speed: 86_400 / 2.0); // a day in 2 real seconds
        var before = clock.GetUtcNow();
        await Task.Delay(TimeSpan.FromDays(1), clock, TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken);
        // Never early on the scaled clock, though a real millisecond of timer jitter is 43 simulated seconds here.
        (clock.GetUtcNow() - before).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromDays(1));
    }

    [Fact]
    public async Task Short_waits_at_high_speed_never_end_before_their_instant_on_the_scaled_clock()
    {
        var clock = new ScaledTimeProvider(Start, DateTimeOffset.UtcNow, speed: 43_200); // an hour in 83 real ms
        for (var i = 0; i < 20; i++)
        {
            var before = clock.GetUtcNow();
            await Task.Delay(TimeSpan.FromHours(1), clock, TestContext.Current.CancellationToken);
            (clock.GetUtcNow() - before).ShouldBeGreaterThanOrEqualTo(TimeSpan.FromHours(1));
        }
    }

    [Fact]
    public void Without_settings_it_is_the_system_clock_and_bad_speeds_are_refused()
    {
        ClockOptions.From(new ConfigurationBuilder().Build()).ShouldBeSameAs(TimeProvider.System);
        Should.Throw<InvalidOperationException>(() => ClockOptions.From(new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Backup:Clock:Speed"] = "0", ["Backup:Clock:Start"] = "2026-06-01T00:00:00Z" }).Build()));
    }
}
