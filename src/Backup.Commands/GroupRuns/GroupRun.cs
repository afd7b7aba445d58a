using Backup.Commands.Common;
using Backup.Commands.ProtectionGroups;

namespace Backup.Commands.GroupRuns;

/// <summary>One data source of a group run: the recovery point requested for it, and the agent that takes it.</summary>
public sealed record GroupRunMember(Guid DataSourceId, Guid RecoveryPointId, Guid AgentId);

/// <summary>
/// Every data source of a protection group was asked for a recovery point at one instant (<see cref="RequestedAt"/>), each on
/// its agent's queue: a tiered application backed up at the same time.
/// </summary>
public sealed record GroupRunRequested(Guid RunId, Guid GroupId, IReadOnlyList<GroupRunMember> Members, string RequestedBy, DateTimeOffset RequestedAt);

/// <summary>
/// In a member's recovery-point stream, right after its <c>BackupRequested</c> (version 2): the point is part of group run
/// <see cref="RunId"/>. A separate event because published event shapes never change.
/// </summary>
public sealed record BackupInGroupRun(Guid RecoveryPointId, Guid RunId, Guid GroupId);

/// <summary>A member's agent started its backup (the first start: a lost lease's re-run is the same member).</summary>
public sealed record GroupRunMemberStarted(Guid RunId, Guid RecoveryPointId, DateTimeOffset StartedAt);

/// <summary>A member's recovery point was created, or failed (<see cref="FailureReason"/>: an agent offline, lost, a source that could not be read…).</summary>
public sealed record GroupRunMemberEnded(Guid RunId, Guid RecoveryPointId, string? FailureReason, DateTimeOffset EndedAt);

/// <summary>Every member ended: complete when <see cref="Failed"/> is 0, else complete with failures (the failed members are named by their events).</summary>
public sealed record GroupRunCompleted(Guid RunId, int Succeeded, int Failed, DateTimeOffset CompletedAt);

public enum GroupRunMemberPhase
{
    Requested = 1,
    Started = 2,
    Ended = 3,
}

/// <summary>A group run: its members by recovery point and where each stands.</summary>
public sealed record GroupRun(Guid Id, Guid GroupId, IReadOnlyDictionary<Guid, GroupRunMemberPhase> Members, int Failed, bool Completed)
{
    public static GroupRun? Next(GroupRun? state, object @event) => @event switch
    {
        GroupRunRequested e => new GroupRun(e.RunId, e.GroupId, e.Members.ToDictionary(m => m.RecoveryPointId, _ => GroupRunMemberPhase.Requested), 0, false),
        GroupRunMemberStarted e when state is not null => state with { Members = With(state.Members, e.RecoveryPointId, GroupRunMemberPhase.Started) },
        GroupRunMemberEnded e when state is not null => state with
        {
            Members = With(state.Members, e.RecoveryPointId, GroupRunMemberPhase.Ended), Failed = state.Failed + (e.FailureReason is null ? 0 : 1),
        },
        GroupRunCompleted when state is not null => state with { Completed = true },
        _ => state,
    };

    private static Dictionary<Guid, GroupRunMemberPhase> With(IReadOnlyDictionary<Guid, GroupRunMemberPhase> members, Guid id, GroupRunMemberPhase phase) =>
        new(members) { [id] = phase };

    /// <summary>Refused for a group that does not exist or has nothing to back up; the members are the group's data sources now.</summary>
    public static void CheckCanRun(ProtectionGroup? group, Guid groupId)
    {
        if (group is null) throw new NotFoundException("Protection group", groupId);
        if (group.DataSourceIds.Count == 0)
            throw new ConflictException($"Protection group {group.Id} protects no data source yet: a group run has nothing to back up.");
    }

    /// <summary>The member's first start; nothing when it is not a member or has started before (a re-run after a lost lease).</summary>
    public IReadOnlyList<object> MemberStarted(Guid recoveryPointId, DateTimeOffset at) =>
        Members.TryGetValue(recoveryPointId, out var phase) && phase == GroupRunMemberPhase.Requested
            ? [new GroupRunMemberStarted(Id, recoveryPointId, at)]
            : [];

    /// <summary>The member's end and, when it was the last to end, the run's; nothing when it ended before (a re-delivered event).</summary>
    public IReadOnlyList<object> MemberEnded(Guid recoveryPointId, string? failureReason, DateTimeOffset at)
    {
        if (!Members.TryGetValue(recoveryPointId, out var phase) || phase == GroupRunMemberPhase.Ended) return [];
        var ended = new GroupRunMemberEnded(Id, recoveryPointId, failureReason, at);
        var after = Next(this, ended)!;
        return after.Members.Values.All(p => p == GroupRunMemberPhase.Ended)
            ? [ended, new GroupRunCompleted(Id, after.Members.Count - after.Failed, after.Failed, at)]
            : [ended];
    }
}
