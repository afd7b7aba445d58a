using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Marten;
using Marten.Events.Aggregation;
using Mediator;

namespace Backup.Projections.ProtectionGroups;

public sealed class ProtectionGroupView
{
    public Guid Id { get; set; }
    public string Name { get; set; } = "";

    public DateTimeOffset CreatedAt { get; set; }
    public List<Guid> DataSourceIds { get; set; } = [];
    public ShortTermPolicy? ShortTermPolicy { get; set; }
    public int? RecoveryPointsKeptOnDisk { get; set; }
    public OnlinePolicy? OnlinePolicy { get; set; }
    public OnlineThrottling? OnlineThrottling { get; set; }
    public int? AlertThresholdDays { get; set; }

    /// <summary>The scheduler takes the group's recovery points as group runs (all its data sources at one instant).</summary>
    public bool RunsTogether { get; set; }
    public DateTimeOffset? PoliciesChangedAt { get; set; }

    /// <summary>The group stream's version: the API's ETag, and what a policy edit must name in If-Match.</summary>
    public int Version { get; set; }
}

public sealed partial class ProtectionGroupViewProjection : SingleStreamProjection<ProtectionGroupView, Guid>
{
    public static ProtectionGroupView Create(ProtectionGroupCreated e) => new()
    {
        Id = e.GroupId, Name = e.Name, CreatedAt = e.CreatedAt, Version = 1,
    };

    public static void Apply(DataSourceAddedToGroup e, ProtectionGroupView view)
    {
        view.DataSourceIds.Add(e.DataSourceId);
        view.Version++;
    }

    public static void Apply(DataSourceRemovedFromGroup e, ProtectionGroupView view)
    {
        view.DataSourceIds.Remove(e.DataSourceId);
        view.Version++;
    }

    public static void Apply(ShortTermPolicySet e, ProtectionGroupView view)
    {
        view.ShortTermPolicy = e.Policy;
        view.RecoveryPointsKeptOnDisk = e.RecoveryPointsKeptOnDisk;
        view.PoliciesChangedAt = e.SetAt;
        view.Version++;
    }

    public static void Apply(OnlinePolicySet e, ProtectionGroupView view)
    {
        view.OnlinePolicy = e.Policy;
        view.PoliciesChangedAt = e.SetAt;
        view.Version++;
    }

    public static void Apply(OnlineThrottlingSet e, ProtectionGroupView view)
    {
        view.OnlineThrottling = e.Throttling;
        view.PoliciesChangedAt = e.SetAt;
        view.Version++;
    }

    public static void Apply(AlertThresholdSet e, ProtectionGroupView view)
    {
        view.AlertThresholdDays = e.DaysWithoutRecoveryPoint;
        view.PoliciesChangedAt = e.SetAt;
        view.Version++;
    }

    public static void Apply(GroupRunsSet e, ProtectionGroupView view)
    {
        view.RunsTogether = e.Together;
        view.PoliciesChangedAt = e.SetAt;
        view.Version++;
    }
}

public sealed record GetProtectionGroup(Guid GroupId) : IQuery<ProtectionGroupView?>;

public sealed class GetProtectionGroupHandler(IQuerySession session) : IQueryHandler<GetProtectionGroup, ProtectionGroupView?>
{
    public async ValueTask<ProtectionGroupView?> Handle(GetProtectionGroup query, CancellationToken ct) =>
        await session.LoadAsync<ProtectionGroupView>(query.GroupId, ct);
}

public sealed record ListProtectionGroups : IQuery<IReadOnlyList<ProtectionGroupView>>;

public sealed class ListProtectionGroupsHandler(IQuerySession session) : IQueryHandler<ListProtectionGroups, IReadOnlyList<ProtectionGroupView>>
{
    public async ValueTask<IReadOnlyList<ProtectionGroupView>> Handle(ListProtectionGroups query, CancellationToken ct) =>
        await session.Query<ProtectionGroupView>().OrderBy(g => g.Name).ToListAsync(ct);
}
