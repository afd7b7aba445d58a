using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.ProtectionGroups;

/// <summary>Whether the scheduler takes the group's recovery points as group runs (all data sources at one instant).</summary>
public sealed record SetGroupRuns(Guid GroupId, long? ExpectedVersion, bool? Together) : ICommand<long>;

public sealed class SetGroupRunsValidator : AbstractValidator<SetGroupRuns>
{
    public SetGroupRunsValidator()
    {
        RuleFor(x => x.GroupId).NotEmpty();
        RuleFor(x => x.ExpectedVersion).ValidExpectedVersion();
        RuleFor(x => x.Together).NotNull();
    }
}

public sealed class SetGroupRunsHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<SetGroupRuns, long>
{
    public ValueTask<long> Handle(SetGroupRuns c, CancellationToken ct) =>
        PolicyEdits.ApplyAsync(session, c.GroupId, c.ExpectedVersion, group => ProtectionGroup.SetGroupRuns(group, c.GroupId, c.Together!.Value, clock.GetUtcNow()), ct);
}
