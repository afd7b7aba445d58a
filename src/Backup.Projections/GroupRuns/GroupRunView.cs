using System.Text.Json.Serialization;
using Backup.Commands.GroupRuns;
using FluentValidation;
using Marten;
using Marten.Events.Aggregation;
using Mediator;

namespace Backup.Projections.GroupRuns;

[JsonConverter(typeof(JsonStringEnumConverter<GroupRunStatus>))]
public enum GroupRunStatus
{
    /// <summary>No member has started yet.</summary>
    Requested = 1,
    Running = 2,

    /// <summary>Every member's recovery point was created.</summary>
    Completed = 3,

    /// <summary>Every member ended, and at least one failed (see its <see cref="GroupRunMemberView.FailureReason"/>).</summary>
    CompletedWithFailures = 4,
}

[JsonConverter(typeof(JsonStringEnumConverter<GroupRunMemberStatus>))]
public enum GroupRunMemberStatus
{
    Requested = 1,
    Running = 2,
    Succeeded = 3,
    Failed = 4,
}

public sealed class GroupRunMemberView
{
    public Guid DataSourceId { get; set; }
    public Guid RecoveryPointId { get; set; }
    public Guid AgentId { get; set; }
    public GroupRunMemberStatus Status { get; set; } = GroupRunMemberStatus.Requested;
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? EndedAt { get; set; }
    public string? FailureReason { get; set; }
}

/// <summary>
/// One group run: its members (one recovery point per data source of the group, requested at one instant) and how far they
/// got. <see cref="SpreadSeconds"/>: from the first member's start to the last one's so far, how nearly together the agents
/// took their members; null until one started. "Restore the group as of this run" restores the members' recovery points.
/// </summary>
public sealed class GroupRunView
{
    public Guid Id { get; set; }
    public Guid GroupId { get; set; }

    /// <summary>Global sequence of the request: the order of the group's runs.</summary>
    public long Sequence { get; set; }
    public GroupRunStatus Status { get; set; }
    public string RequestedBy { get; set; } = "";
    public DateTimeOffset RequestedAt { get; set; }
    public DateTimeOffset? FirstStartedAt { get; set; }
    public DateTimeOffset? LastStartedAt { get; set; }
    public double? SpreadSeconds { get; set; }
    public DateTimeOffset? CompletedAt { get; set; }
    public int Succeeded { get; set; }
    public int Failed { get; set; }
    public List<GroupRunMemberView> Members { get; set; } = [];
}

/// <summary>Async, over the run's own stream: its request, each member's start and end (recorded by the workers), its completion.</summary>
public sealed partial class GroupRunViewProjection : SingleStreamProjection<GroupRunView, Guid>
{
    public static GroupRunView Create(JasperFx.Events.IEvent<GroupRunRequested> @event)
    {
        var e = @event.Data;
        return new GroupRunView
        {
            Id = e.RunId, GroupId = e.GroupId, Sequence = @event.Sequence, Status = GroupRunStatus.Requested, RequestedBy = e.RequestedBy, RequestedAt = e.RequestedAt,
            Members = [.. e.Members.Select(m => new GroupRunMemberView { DataSourceId = m.DataSourceId, RecoveryPointId = m.RecoveryPointId, AgentId = m.AgentId })],
        };
    }

    public static void Apply(GroupRunMemberStarted e, GroupRunView v)
    {
        if (v.Members.Find(m => m.RecoveryPointId == e.RecoveryPointId) is not { } member) return;
        member.Status = GroupRunMemberStatus.Running;
        member.StartedAt = e.StartedAt;
        if (v.Status == GroupRunStatus.Requested) v.Status = GroupRunStatus.Running;
        v.FirstStartedAt = v.FirstStartedAt is { } first && first <= e.StartedAt ? first : e.StartedAt;
        v.LastStartedAt = v.LastStartedAt is { } last && last >= e.StartedAt ? last : e.StartedAt;
        v.SpreadSeconds = Math.Round((v.LastStartedAt.Value - v.FirstStartedAt.Value).TotalSeconds, 3);
    }

    public static void Apply(GroupRunMemberEnded e, GroupRunView v)
    {
        if (v.Members.Find(m => m.RecoveryPointId == e.RecoveryPointId) is not { } member) return;
        member.Status = e.FailureReason is null ? GroupRunMemberStatus.Succeeded : GroupRunMemberStatus.Failed;
        member.EndedAt = e.EndedAt;
        member.FailureReason = e.FailureReason;
        if (v.Status == GroupRunStatus.Requested) v.Status = GroupRunStatus.Running;
    }

    public static void Apply(GroupRunCompleted e, GroupRunView v)
    {
        v.Status = e.Failed == 0 ? GroupRunStatus.Completed : GroupRunStatus.CompletedWithFailures;
        v.Succeeded = e.Succeeded;
        v.Failed = e.Failed;
        v.CompletedAt = e.CompletedAt;
    }
}

public sealed record GetGroupRun(Guid RunId) : IQuery<GroupRunView?>;

public sealed class GetGroupRunHandler(IQuerySession session) : IQueryHandler<GetGroupRun, GroupRunView?>
{
    public async ValueTask<GroupRunView?> Handle(GetGroupRun query, CancellationToken ct) => await session.LoadAsync<GroupRunView>(query.RunId, ct);
}

/// <summary>A group's runs, newest first (at most <see cref="Limit"/>).</summary>
public sealed record ListGroupRuns(Guid GroupId, int Limit = 20) : IQuery<IReadOnlyList<GroupRunView>>;

public sealed class ListGroupRunsValidator : AbstractValidator<ListGroupRuns>
{
    public ListGroupRunsValidator() => RuleFor(x => x.Limit).InclusiveBetween(1, 200);
}

public sealed class ListGroupRunsHandler(IQuerySession session) : IQueryHandler<ListGroupRuns, IReadOnlyList<GroupRunView>>
{
    public async ValueTask<IReadOnlyList<GroupRunView>> Handle(ListGroupRuns query, CancellationToken ct) =>
        await session.Query<GroupRunView>().Where(r => r.GroupId == query.GroupId).OrderByDescending(r => r.Sequence).Take(query.Limit).ToListAsync(ct);
}
