using Backup.Commands.ProtectionGroups;
using Backup.Commands.Scheduling;
using Backup.Storage.Transfer;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Scheduling;

/// <summary>
/// Online throttling: which rate applies when (work days and hours in the group's zone), and that a paced transfer keeps
/// to it on a clock the test moves (virtual seconds, no real waiting).
/// </summary>
public sealed class ThrottlingTests
{
    private static readonly OnlineThrottling WeekdaysNineToFive = new(
        WorkHoursKbps: 512, NonWorkHoursKbps: 8_000,
        [DayOfWeek.Monday, DayOfWeek.Tuesday, DayOfWeek.Wednesday, DayOfWeek.Thursday, DayOfWeek.Friday],
        new TimeOnly(9, 0), new TimeOnly(17, 0));

    [Theory]
    [InlineData("2026-03-25T08:59:00+01:00", 1_000_000)] // Wednesday before work: 8,000 Kbps = 1,000,000 B/s
    [InlineData("2026-03-25T09:00:00+01:00", 64_000)] // work starts: 512 Kbps = 64,000 B/s
    [InlineData("2026-03-25T16:59:59+01:00", 64_000)]
    [InlineData("2026-03-25T17:00:00+01:00", 1_000_000)] // the end is exclusive
    [InlineData("2026-03-28T12:00:00+01:00", 1_000_000)] // Saturday
    [InlineData("2026-03-30T09:30:00+02:00", 64_000)] // Monday after the spring change: wall-clock hours still count
    [InlineData("2026-03-30T07:30:00+00:00", 64_000)] // the same instant written in UTC
    public void The_work_hours_rate_applies_on_work_days_within_the_hours_of_the_groups_zone(string instant, long bytesPerSecond) =>
        ThrottleSchedule.BytesPerSecond(WeekdaysNineToFive, "Europe/Amsterdam", DateTimeOffset.Parse(instant, System.Globalization.CultureInfo.InvariantCulture))
            .ShouldBe(bytesPerSecond);

    /// <summary>Reads everything through a paced stream on a <see cref="JumpingClock"/>; returns the seconds it waited.</summary>
    private static async Task<(byte[] Read, double Seconds)> ReadPacedAsync(byte[] data, DateTimeOffset start, Func<DateTimeOffset, long?> rate)
    {
        var clock = new JumpingClock(start);
        await using var stream = new PacedStream(new MemoryStream(data), new Pacer(clock, rate));
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, 16 << 10, TestContext.Current.CancellationToken);
        return (copy.ToArray(), (clock.GetUtcNow() - start).TotalSeconds);
    }

    [Fact]
    public async Task A_paced_transfer_keeps_to_the_rate_and_delivers_every_byte()
    {
        var data = Random.Shared.GetItems<byte>(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), 640_000);
        var (read, seconds) = await ReadPacedAsync(data, Clock.Now, _ => 64_000);
        read.ShouldBe(data);
        // 640,000 bytes at 64,000 B/s: 10 s, less the one-second burst a transfer may start with.
        seconds.ShouldBeInRange(8.99, 9.01);
    }

    [Fact]
    public async Task Without_a_limit_nothing_waits()
    {
        var data = new byte[2_000_000];
        var (read, seconds) = await ReadPacedAsync(data, Clock.Now, _ => null);
        read.Length.ShouldBe(data.Length);
        seconds.ShouldBe(0);
    }

    [Fact]
    public async Task The_rate_changes_when_work_hours_end_during_a_transfer()
    {
        // 16:59:55 on a work day: 5 s at 64,000 B/s (≈ 320 KB plus the burst), then the rest at 1,000,000 B/s.
        var start = DateTimeOffset.Parse("2026-03-25T16:59:55+01:00", System.Globalization.CultureInfo.InvariantCulture);
        var data = new byte[3_000_000];
        var (_, seconds) = await ReadPacedAsync(data, start, now => ThrottleSchedule.BytesPerSecond(WeekdaysNineToFive, "Europe/Amsterdam", now));
        // 5 s at 64,000 B/s (+ the burst: ≈ 384 KB), then ≈ 2.6 MB at 1,000,000 B/s; all at the work rate would be 46 s.
        seconds.ShouldBeInRange(7.4, 7.8);
    }
}
