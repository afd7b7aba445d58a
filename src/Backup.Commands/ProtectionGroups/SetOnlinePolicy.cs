using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.ProtectionGroups;

/// <param name="Days">Days of week for a weekly schedule; must be empty for a daily one.</param>
/// <param name="DailyRetentionDays">Null turns the daily tier off; likewise for the other tiers.</param>
public sealed record SetOnlinePolicy(
    Guid GroupId,
    long? ExpectedVersion,
    IReadOnlyList<TimeOnly>? BackupTimes,
    OnlineSchedule? Schedule,
    IReadOnlyList<DayOfWeek>? Days,
    int? DailyRetentionDays,
    int? WeeklyRetentionWeeks,
    int? MonthlyRetentionMonths,
    int? YearlyRetentionYears) : ICommand<long>;

public sealed class SetOnlinePolicyValidator : AbstractValidator<SetOnlinePolicy>
{
    public SetOnlinePolicyValidator()
    {
        RuleFor(x => x.GroupId).NotEmpty();
        RuleFor(x => x.ExpectedVersion).ValidExpectedVersion();
        RuleFor(x => x.BackupTimes).NotEmpty().DistinctWholeMinutes()
            .Must(t => t is null || t.Count <= PolicyLimits.MaxOnlineBackupsPerDay)
            .WithMessage($"'{{PropertyName}}' allows at most {PolicyLimits.MaxOnlineBackupsPerDay} online backups a day.");
        RuleForEach(x => x.BackupTimes).WholeMinute();
        RuleFor(x => x.Schedule).NotNull().IsInEnum();
        RuleFor(x => x.Days).NotEmpty().When(x => x.Schedule == OnlineSchedule.Weekly)
            .WithMessage("'{PropertyName}' must name at least one day for a weekly schedule.");
        RuleFor(x => x.Days).Empty().When(x => x.Schedule == OnlineSchedule.Daily)
            .WithMessage("'{PropertyName}' must be empty for a daily schedule (it runs every day).");
        RuleFor(x => x.Days).DistinctDays();
        RuleForEach(x => x.Days).IsInEnum();

        RuleFor(x => x.DailyRetentionDays).InclusiveBetween(PolicyLimits.MinDailyDays, PolicyLimits.MaxDailyDays);
        RuleFor(x => x.DailyRetentionDays).Null().When(x => x.Schedule == OnlineSchedule.Weekly)
            .WithMessage("'{PropertyName}' needs a daily schedule: a weekly schedule makes no daily points.");
        RuleFor(x => x.WeeklyRetentionWeeks).InclusiveBetween(PolicyLimits.MinWeeklyWeeks, PolicyLimits.MaxWeeklyWeeks);
        RuleFor(x => x.MonthlyRetentionMonths).InclusiveBetween(PolicyLimits.MinMonthlyMonths, PolicyLimits.MaxMonthlyMonths);
        RuleFor(x => x.YearlyRetentionYears).InclusiveBetween(PolicyLimits.MinYearlyYears, PolicyLimits.MaxYearlyYears);
        RuleFor(x => x)
            .Must(x => x.DailyRetentionDays is not null || x.WeeklyRetentionWeeks is not null || x.MonthlyRetentionMonths is not null || x.YearlyRetentionYears is not null)
            .OverridePropertyName("Retention")
            .WithMessage("At least one retention tier (daily, weekly, monthly or yearly) must be kept.");
    }
}

public sealed class SetOnlinePolicyHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<SetOnlinePolicy, long>
{
    public ValueTask<long> Handle(SetOnlinePolicy c, CancellationToken ct)
    {
        var policy = new OnlinePolicy(
            c.BackupTimes!, c.Schedule!.Value, c.Days ?? [],
            new GfsRetention(c.DailyRetentionDays, c.WeeklyRetentionWeeks, c.MonthlyRetentionMonths, c.YearlyRetentionYears));
        return PolicyEdits.ApplyAsync(session, c.GroupId, c.ExpectedVersion,
            group => ProtectionGroup.SetOnlinePolicy(group, c.GroupId, policy, clock.GetUtcNow()), ct);
    }
}
