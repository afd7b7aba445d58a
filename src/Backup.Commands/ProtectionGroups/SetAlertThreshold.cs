using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.ProtectionGroups;

public sealed record SetAlertThreshold(Guid GroupId, long? ExpectedVersion, int? DaysWithoutRecoveryPoint) : ICommand<long>;

public sealed class SetAlertThresholdValidator : AbstractValidator<SetAlertThreshold>
{
    public SetAlertThresholdValidator()
    {
        RuleFor(x => x.GroupId).NotEmpty();
        RuleFor(x => x.ExpectedVersion).ValidExpectedVersion();
        RuleFor(x => x.DaysWithoutRecoveryPoint).NotNull().InclusiveBetween(PolicyLimits.MinAlertDays, PolicyLimits.MaxAlertDays);
    }
}

public sealed class SetAlertThresholdHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<SetAlertThreshold, long>
{
    public ValueTask<long> Handle(SetAlertThreshold c, CancellationToken ct) =>
        PolicyEdits.ApplyAsync(session, c.GroupId, c.ExpectedVersion,
            group => ProtectionGroup.SetAlertThreshold(group, c.GroupId, c.DaysWithoutRecoveryPoint!.Value, clock.GetUtcNow()), ct);
}
