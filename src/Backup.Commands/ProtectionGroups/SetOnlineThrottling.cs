using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.ProtectionGroups;

public sealed record SetOnlineThrottling(
    Guid GroupId,
    long? ExpectedVersion,
    int? WorkHoursKbps,
    int? NonWorkHoursKbps,
    IReadOnlyList<DayOfWeek>? WorkDays,
    TimeOnly? WorkStart,
    TimeOnly? WorkEnd) : ICommand<long>;

public sealed class SetOnlineThrottlingValidator : AbstractValidator<SetOnlineThrottling>
{
    public SetOnlineThrottlingValidator()
    {
        RuleFor(x => x.GroupId).NotEmpty();
        RuleFor(x => x.ExpectedVersion).ValidExpectedVersion();
        RuleFor(x => x.WorkHoursKbps).NotNull().InclusiveBetween(PolicyLimits.MinKbps, PolicyLimits.MaxKbps)
            .WithMessage($"'{{PropertyName}}' must be between {PolicyLimits.MinKbps} Kbps and 1023 Mbps ({PolicyLimits.MaxKbps} Kbps).");
        RuleFor(x => x.NonWorkHoursKbps).NotNull().InclusiveBetween(PolicyLimits.MinKbps, PolicyLimits.MaxKbps)
            .WithMessage($"'{{PropertyName}}' must be between {PolicyLimits.MinKbps} Kbps and 1023 Mbps ({PolicyLimits.MaxKbps} Kbps).");
        RuleFor(x => x.WorkDays).NotEmpty().DistinctDays();
        RuleForEach(x => x.WorkDays).IsInEnum();
        RuleFor(x => x.WorkStart).NotNull();
        RuleFor(x => x.WorkStart!.Value).WholeMinute().OverridePropertyName(nameof(SetOnlineThrottling.WorkStart)).When(x => x.WorkStart is not null);
        RuleFor(x => x.WorkEnd).NotNull()
            .GreaterThan(x => x.WorkStart).When(x => x.WorkStart is not null)
            .WithMessage("'{PropertyName}' must be after the start of work hours.");
        RuleFor(x => x.WorkEnd!.Value).WholeMinute().OverridePropertyName(nameof(SetOnlineThrottling.WorkEnd)).When(x => x.WorkEnd is not null);
    }
}

public sealed class SetOnlineThrottlingHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<SetOnlineThrottling, long>
{
    public ValueTask<long> Handle(SetOnlineThrottling c, CancellationToken ct)
    {
        var throttling = new OnlineThrottling(c.WorkHoursKbps!.Value, c.NonWorkHoursKbps!.Value, c.WorkDays!, c.WorkStart!.Value, c.WorkEnd!.Value);
        return PolicyEdits.ApplyAsync(session, c.GroupId, c.ExpectedVersion,
            group => ProtectionGroup.SetOnlineThrottling(group, c.GroupId, throttling, clock.GetUtcNow()), ct);
    }
}
