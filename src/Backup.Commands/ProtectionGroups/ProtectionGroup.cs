using Backup.Commands.Common;
using Backup.Commands.DataSources;

namespace Backup.Commands.ProtectionGroups;

public sealed record ProtectionGroupCreated(Guid GroupId, string Name, DateTimeOffset CreatedAt);

public sealed record DataSourceAddedToGroup(Guid GroupId, Guid DataSourceId, Guid AgentId, DataSourceKind Kind, string Path, DateTimeOffset AddedAt);

/// <summary>The data source was removed from protection (its own stream has <see cref="DataSourceRemoved"/>); it is no longer a member.</summary>
public sealed record DataSourceRemovedFromGroup(Guid GroupId, Guid DataSourceId, DateTimeOffset RemovedAt);

public sealed record ShortTermPolicySet(Guid GroupId, ShortTermPolicy Policy, int RecoveryPointsKeptOnDisk, DateTimeOffset SetAt);

public sealed record OnlinePolicySet(Guid GroupId, OnlinePolicy Policy, DateTimeOffset SetAt);

public sealed record OnlineThrottlingSet(Guid GroupId, OnlineThrottling Throttling, DateTimeOffset SetAt);

public sealed record AlertThresholdSet(Guid GroupId, int DaysWithoutRecoveryPoint, DateTimeOffset SetAt);

/// <summary>
/// Whether the scheduler backs the group's data sources up together, as one group run at each recovery-point time
/// (<see cref="Together"/>), or each on its own; sync-only slots stay per data source either way.
/// </summary>
public sealed record GroupRunsSet(Guid GroupId, bool Together, DateTimeOffset SetAt);

public sealed record ProtectionGroup(
    Guid Id,
    string Name,
    IReadOnlyList<Guid> DataSourceIds,
    ShortTermPolicy? ShortTerm = null,
    OnlinePolicy? Online = null,
    OnlineThrottling? Throttling = null,
    int? AlertThresholdDays = null,
    bool RunsTogether = false)
{
    public static ProtectionGroup? Next(ProtectionGroup? state, object @event) => @event switch
    {
        ProtectionGroupCreated e => new ProtectionGroup(e.GroupId, e.Name, []),
        DataSourceAddedToGroup e when state is not null => state with { DataSourceIds = [.. state.DataSourceIds, e.DataSourceId] },
        DataSourceRemovedFromGroup e when state is not null => state with { DataSourceIds = [.. state.DataSourceIds.Where(id => id != e.DataSourceId)] },
        ShortTermPolicySet e when state is not null => state with { ShortTerm = e.Policy },
        OnlinePolicySet e when state is not null => state with { Online = e.Policy },
        OnlineThrottlingSet e when state is not null => state with { Throttling = e.Throttling },
        AlertThresholdSet e when state is not null => state with { AlertThresholdDays = e.DaysWithoutRecoveryPoint },
        GroupRunsSet e when state is not null => state with { RunsTogether = e.Together },
        _ => state,
    };

    public static ProtectionGroupCreated Create(Guid groupId, string name, DateTimeOffset now) =>
        new(groupId, name.Trim(), now);

    public static (DataSourceAddedToGroup ToGroup, DataSourceProtected ToDataSource) AddDataSource(
        ProtectionGroup? group, Guid groupId, Guid dataSourceId, Guid agentId, DataSourceKind kind, string path,
        DateTimeOffset now)
    {
        if (group is null) throw new NotFoundException("Protection group", groupId);
        return (new DataSourceAddedToGroup(group.Id, dataSourceId, agentId, kind, path, now),
                new DataSourceProtected(dataSourceId, group.Id, agentId, kind, path, now));
    }

    /// <summary>Shapes and ranges are the validator's job; this guards what needs the group and the 64-point limit.</summary>
    public static ShortTermPolicySet SetShortTermPolicy(ProtectionGroup? group, Guid groupId, ShortTermPolicy policy, DateTimeOffset now)
    {
        if (group is null) throw new NotFoundException("Protection group", groupId);
        var kept = PolicyLimits.RecoveryPointsKept(policy.RetentionDays, policy.RecoveryPointTimes.Count, policy.RecoveryPointDays);
        if (kept > PolicyLimits.MaxRecoveryPointsOnDisk)
            throw new UnprocessableException($"The policy keeps up to {kept} recovery points on disk; a file data source can keep at most {PolicyLimits.MaxRecoveryPointsOnDisk}.");
        var normalised = policy with
        {
            RecoveryPointTimes = [.. policy.RecoveryPointTimes.Order()],
            RecoveryPointDays = [.. policy.RecoveryPointDays.Distinct().Order()],
        };
        return new ShortTermPolicySet(group.Id, normalised, kept, now);
    }

    public static OnlinePolicySet SetOnlinePolicy(ProtectionGroup? group, Guid groupId, OnlinePolicy policy, DateTimeOffset now)
    {
        if (group is null) throw new NotFoundException("Protection group", groupId);
        // Online recovery points are copies of disk recovery points (and use the short-term policy's time zone).
        if (group.ShortTerm is null)
            throw new ConflictException($"Protection group {group.Id} has no short-term policy yet; online protection copies disk recovery points, so set that first.");
        var normalised = policy with
        {
            BackupTimes = [.. policy.BackupTimes.Order()],
            Days = policy.Schedule == OnlineSchedule.Weekly ? [.. policy.Days.Distinct().Order()] : [],
        };
        return new OnlinePolicySet(group.Id, normalised, now);
    }

    public static OnlineThrottlingSet SetOnlineThrottling(ProtectionGroup? group, Guid groupId, OnlineThrottling throttling, DateTimeOffset now)
    {
        if (group is null) throw new NotFoundException("Protection group", groupId);
        return new OnlineThrottlingSet(group.Id, throttling with { WorkDays = [.. throttling.WorkDays.Distinct().Order()] }, now);
    }

    public static AlertThresholdSet SetAlertThreshold(ProtectionGroup? group, Guid groupId, int daysWithoutRecoveryPoint, DateTimeOffset now)
    {
        if (group is null) throw new NotFoundException("Protection group", groupId);
        return new AlertThresholdSet(group.Id, daysWithoutRecoveryPoint, now);
    }

    public static GroupRunsSet SetGroupRuns(ProtectionGroup? group, Guid groupId, bool together, DateTimeOffset now)
    {
        if (group is null) throw new NotFoundException("Protection group", groupId);
        return new GroupRunsSet(group.Id, together, now);
    }
}
