using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.GroupRuns;

/// <summary>"Back up the group now": a recovery point of every data source of the group, requested at one instant.</summary>
public sealed record RequestGroupRun(Guid GroupId, string RequestedBy) : ICommand<GroupRunRequested>;

public sealed class RequestGroupRunValidator : AbstractValidator<RequestGroupRun>
{
    public RequestGroupRunValidator()
    {
        RuleFor(x => x.GroupId).NotEmpty();
        RuleFor(x => x.RequestedBy).NotEmpty();
    }
}

/// <summary>
/// One transaction: the run's stream and every member's recovery-point stream (its <c>BackupRequested</c>, the same decision
/// as a single "back up now", then <see cref="BackupInGroupRun"/>), so each agent's queue holds its members from the same
/// instant, and a run is never half requested.
/// </summary>
public sealed class RequestGroupRunHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RequestGroupRun, GroupRunRequested>
{
    public async ValueTask<GroupRunRequested> Handle(RequestGroupRun command, CancellationToken ct)
    {
        var (group, _) = await session.LoadAsync<ProtectionGroup>(command.GroupId, ProtectionGroup.Next, ct);
        GroupRun.CheckCanRun(group, command.GroupId);
        var now = clock.GetUtcNow();
        var runId = Guid.CreateVersion7();
        var members = new List<GroupRunMember>();
        foreach (var dataSourceId in group!.DataSourceIds)
        {
            var (source, _) = await session.LoadAsync<DataSource>(dataSourceId, DataSource.Next, ct);
            var recoveryPointId = Guid.CreateVersion7();
            var requested = RecoveryPoint.Request(source, dataSourceId, recoveryPointId, command.RequestedBy, now);
            session.Events.StartStream<RecoveryPoint>(recoveryPointId, requested, new BackupInGroupRun(recoveryPointId, runId, group.Id));
            members.Add(new GroupRunMember(dataSourceId, recoveryPointId, requested.AgentId));
        }
        var run = new GroupRunRequested(runId, group.Id, members, command.RequestedBy, now);
        session.Events.StartStream<GroupRun>(runId, run);
        await session.SaveChangesAsync(ct);
        return run;
    }
}
