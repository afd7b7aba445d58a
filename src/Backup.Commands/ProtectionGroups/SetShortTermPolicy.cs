using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.ProtectionGroups;

/// <param name="ExpectedVersion">The group version the caller read (If-Match); null means "whatever is current" (If-Match: *).</param>
/// <returns>The group's version after the change.</returns>
public sealed record SetShortTermPolicy(
    Guid GroupId,
    long? ExpectedVersion,
    int? RetentionDays,
    SynchronisationMode? Synchronisation,
    int? SyncIntervalMinutes,
    IReadOnlyList<TimeOnly>? RecoveryPointTimes,
    IReadOnlyList<DayOfWeek>? RecoveryPointDays,
    string? TimeZone) : ICommand<long>;

public sealed class SetShortTermPolicyValidator : AbstractValidator<SetShortTermPolicy>
{
    public SetShortTermPolicyValidator()
    {
        RuleFor(x => x.GroupId).NotEmpty();
        RuleFor(x => x.ExpectedVersion).ValidExpectedVersion();
        RuleFor(x => x.RetentionDays).NotNull().InclusiveBetween(PolicyLimits.MinRetentionDays, PolicyLimits.MaxRetentionDays);
        RuleFor(x => x.Synchronisation).NotNull().IsInEnum();
        RuleFor(x => x.SyncIntervalMinutes)
            .NotNull().When(x => x.Synchronisation == SynchronisationMode.Interval)
            .WithMessage("'{PropertyName}' is required when synchronising at an interval.")
            .Must(m => m is null || PolicyLimits.SyncIntervalsMinutes.Contains(m.Value))
            .WithMessage($"'{{PropertyName}}' must be one of {string.Join(", ", PolicyLimits.SyncIntervalsMinutes)} minutes.");
        RuleFor(x => x.SyncIntervalMinutes)
            .Null().When(x => x.Synchronisation == SynchronisationMode.JustBeforeRecoveryPoint)
            .WithMessage("'{PropertyName}' must be empty when synchronising just before each recovery point.");
        RuleFor(x => x.RecoveryPointTimes).NotEmpty().DistinctWholeMinutes();
        RuleForEach(x => x.RecoveryPointTimes).WholeMinute();
        RuleFor(x => x.RecoveryPointDays).NotEmpty().DistinctDays();
        RuleForEach(x => x.RecoveryPointDays).IsInEnum();
        RuleFor(x => x.TimeZone).NotEmpty().Must(PolicyLimits.IsKnownTimeZone)
            .WithMessage("'{PropertyName}' must be an IANA time zone id this server knows (e.g. Europe/London).");
        RuleFor(x => x.RetentionDays)
            .Must((x, days) => PolicyLimits.RecoveryPointsKept(days!.Value, x.RecoveryPointTimes!.Count, x.RecoveryPointDays!) <= PolicyLimits.MaxRecoveryPointsOnDisk)
            .When(x => x.RetentionDays is not null && x.RecoveryPointTimes is { Count: > 0 } && x.RecoveryPointDays is { Count: > 0 })
            .WithMessage((x, days) =>
                $"With these recovery-point times and days, {days} days of retention keeps up to " +
                $"{PolicyLimits.RecoveryPointsKept(days!.Value, x.RecoveryPointTimes!.Count, x.RecoveryPointDays!)} recovery points on disk; " +
                $"a file data source can keep at most {PolicyLimits.MaxRecoveryPointsOnDisk}.");
    }
}

public sealed class SetShortTermPolicyHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<SetShortTermPolicy, long>
{
    public ValueTask<long> Handle(SetShortTermPolicy c, CancellationToken ct)
    {
        var policy = new ShortTermPolicy(
            c.RetentionDays!.Value, c.Synchronisation!.Value, c.SyncIntervalMinutes,
            c.RecoveryPointTimes!, c.RecoveryPointDays!, c.TimeZone!);
        return PolicyEdits.ApplyAsync(session, c.GroupId, c.ExpectedVersion,
            group => ProtectionGroup.SetShortTermPolicy(group, c.GroupId, policy, clock.GetUtcNow()), ct);
    }
}
