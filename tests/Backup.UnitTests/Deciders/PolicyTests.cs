using Backup.Commands.Common;
using Backup.Commands.ProtectionGroups;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class PolicyTests
{
    private static readonly Guid GroupId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000b1");
    private static readonly ProtectionGroup Group = ProtectionGroup.Next(null, ProtectionGroup.Create(GroupId, "Servers", Clock.Now))!;

    private static ShortTermPolicy ShortTerm(int retentionDays = 5, TimeOnly[]? times = null, DayOfWeek[]? days = null) => new(
        retentionDays, SynchronisationMode.Interval, 15,
        times ?? [new TimeOnly(20, 0), new TimeOnly(8, 0)],
        days ?? [DayOfWeek.Friday, DayOfWeek.Monday, DayOfWeek.Monday],
        "Europe/London");

    private static readonly OnlinePolicy Online = new(
        [new TimeOnly(22, 0), new TimeOnly(9, 0)], OnlineSchedule.Daily, [DayOfWeek.Sunday], new GfsRetention(180, 104, 60, 10));

    [Fact]
    public void Short_term_policy_on_an_unknown_group_is_not_found()
    {
        Should.Throw<NotFoundException>(() => ProtectionGroup.SetShortTermPolicy(null, GroupId, ShortTerm(), Clock.Now)).Id.ShouldBe(GroupId);
        Should.Throw<NotFoundException>(() => ProtectionGroup.SetOnlinePolicy(null, GroupId, Online, Clock.Now));
        Should.Throw<NotFoundException>(() => ProtectionGroup.SetOnlineThrottling(null, GroupId, new OnlineThrottling(512, 1024, [DayOfWeek.Monday], new(9, 0), new(17, 0)), Clock.Now));
        Should.Throw<NotFoundException>(() => ProtectionGroup.SetAlertThreshold(null, GroupId, 3, Clock.Now));
    }

    [Fact]
    public void Short_term_policy_is_recorded_in_order_with_the_points_it_keeps_on_disk()
    {
        var set = ProtectionGroup.SetShortTermPolicy(Group, GroupId, ShortTerm(retentionDays: 10), Clock.Now);

        set.GroupId.ShouldBe(GroupId);
        set.SetAt.ShouldBe(Clock.Now);
        set.Policy.RecoveryPointTimes.ShouldBe([new TimeOnly(8, 0), new TimeOnly(20, 0)]);
        set.Policy.RecoveryPointDays.ShouldBe([DayOfWeek.Monday, DayOfWeek.Friday]);
        // 10 days: one whole week (2 days × 2 times) plus the best 3 consecutive days, which hold one of Monday or Friday (× 2 times).
        set.RecoveryPointsKeptOnDisk.ShouldBe(6);
        ProtectionGroup.Next(Group, set)!.ShortTerm.ShouldBe(set.Policy);
    }

    [Fact]
    public void More_than_64_points_on_disk_is_refused_by_the_decider_too()
    {
        Should.Throw<UnprocessableException>(() =>
            ProtectionGroup.SetShortTermPolicy(Group, GroupId, ShortTerm(retentionDays: 65, times: [new(8, 0)], days: Enum.GetValues<DayOfWeek>()), Clock.Now));
        ProtectionGroup.SetShortTermPolicy(Group, GroupId, ShortTerm(retentionDays: 64, times: [new(8, 0)], days: Enum.GetValues<DayOfWeek>()), Clock.Now)
            .RecoveryPointsKeptOnDisk.ShouldBe(64);
    }

    [Theory]
    [InlineData(448, 1, 1, 64)]
    [InlineData(64, 1, 7, 64)]
    [InlineData(32, 2, 7, 64)]
    [InlineData(33, 2, 7, 66)]
    [InlineData(1, 24, 7, 24)]
    [InlineData(6, 1, 1, 1)]
    [InlineData(7, 3, 5, 15)]
    public void Points_kept_on_disk_is_the_busiest_retention_window(int retentionDays, int timesPerDay, int dayCount, int expected)
    {
        PolicyLimits.RecoveryPointsKept(retentionDays, timesPerDay, Enum.GetValues<DayOfWeek>().Take(dayCount).ToArray()).ShouldBe(expected);
    }

    [Fact]
    public void Online_policy_needs_a_short_term_policy_first()
    {
        Should.Throw<ConflictException>(() => ProtectionGroup.SetOnlinePolicy(Group, GroupId, Online, Clock.Now));
    }

    [Fact]
    public void Online_policy_is_recorded_with_sorted_times_and_no_days_when_daily()
    {
        var group = ProtectionGroup.Next(Group, ProtectionGroup.SetShortTermPolicy(Group, GroupId, ShortTerm(), Clock.Now))!;

        var set = ProtectionGroup.SetOnlinePolicy(group, GroupId, Online, Clock.Now);

        set.Policy.BackupTimes.ShouldBe([new TimeOnly(9, 0), new TimeOnly(22, 0)]);
        set.Policy.Days.ShouldBeEmpty();
        set.Policy.Retention.ShouldBe(new GfsRetention(180, 104, 60, 10));
        ProtectionGroup.Next(group, set)!.Online.ShouldBe(set.Policy);
    }

    [Fact]
    public void Throttling_and_alert_threshold_fold_into_the_group()
    {
        var throttling = ProtectionGroup.SetOnlineThrottling(Group, GroupId,
            new OnlineThrottling(2048, 102_400, [DayOfWeek.Friday, DayOfWeek.Monday], new(8, 0), new(18, 0)), Clock.Now);
        var alert = ProtectionGroup.SetAlertThreshold(Group, GroupId, 3, Clock.Now);

        throttling.Throttling.WorkDays.ShouldBe([DayOfWeek.Monday, DayOfWeek.Friday]);
        alert.ShouldBe(new AlertThresholdSet(GroupId, 3, Clock.Now));
        var group = new object[] { throttling, alert }.Aggregate(Group, (g, e) => ProtectionGroup.Next(g, e)!);
        group.Throttling.ShouldBe(throttling.Throttling);
        group.AlertThresholdDays.ShouldBe(3);
        group.Name.ShouldBe("Servers");
    }

    [Fact]
    public void The_latest_policy_wins_when_folding_history()
    {
        var first = ProtectionGroup.SetShortTermPolicy(Group, GroupId, ShortTerm(retentionDays: 5), Clock.Now);
        var second = ProtectionGroup.SetShortTermPolicy(Group, GroupId, ShortTerm(retentionDays: 7), Clock.Now.AddHours(1));

        new object[] { first, second }.Aggregate(Group, (g, e) => ProtectionGroup.Next(g, e)!).ShortTerm!.RetentionDays.ShouldBe(7);
    }
}
