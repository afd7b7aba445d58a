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

public sealed class RequestGroupRunHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RequestGroupRun, GroupRunRequested>
{
    public async ValueTask<GroupRunRequested> Handle(RequestGroupRun command, CancellationToken ct)
    {
        var (group, _) = await session.LoadAsync<ProtectionGroup>(command.GroupId, ProtectionGroup.Next, ct);
        GroupRun.CheckCanRun(group, command.GroupId);
        var run = await GroupRunRequests.StartAsync(session, group!, Guid.CreateVersion7(), _ => Guid.CreateVersion7(), _ => true, command.RequestedBy, clock.GetUtcNow(), ct);
        await session.SaveChangesAsync(ct);
        return run;
    }
}

/// <summary>How a group run is requested, by a person or by the scheduler.</summary>
public static class GroupRunRequests
{
    /// <summary>
    /// Starts, in <paramref name="session"/> (one transaction when saved), the run's stream and every member's recovery-point stream:
    /// its <c>BackupRequested</c> (the same decision as a single "back up now") then <see cref="BackupInGroupRun"/>, so each
    /// agent's queue holds its members from the same instant <paramref name="at"/>, and a run is never half requested. Members
    /// are the group's data sources that <paramref name="includes"/>; <paramref name="pointIdOf"/> gives each one's point id.
    /// </summary>
    public static async Task<GroupRunRequested> StartAsync(
        IDocumentSession session, ProtectionGroup group, Guid runId, Func<Guid, Guid> pointIdOf, Func<Guid, bool> includes, string requestedBy,
        DateTimeOffset at, CancellationToken ct)
    {
        var members = new List<GroupRunMember>();
        foreach (var dataSourceId in group.DataSourceIds.Where(includes))
        {
            var (source, _) = await session.LoadAsync<DataSource>(dataSourceId, DataSource.Next, ct);
            var recoveryPointId = pointIdOf(dataSourceId);
            var requested = RecoveryPoint.Request(source, dataSourceId, recoveryPointId, requestedBy, at);
            session.Events.StartStream<RecoveryPoint>(recoveryPointId, requested, new BackupInGroupRun(recoveryPointId, runId, group.Id));
            members.Add(new GroupRunMember(dataSourceId, recoveryPointId, requested.AgentId));
        }
        var run = new GroupRunRequested(runId, group.Id, members, requestedBy, at);
        session.Events.StartStream<GroupRun>(runId, run);
        return run;
    }
}
