using Backup.Commands.Common;
using Backup.Commands.DataSources;

namespace Backup.Commands.ProtectionGroups;

public sealed record ProtectionGroupCreated(Guid GroupId, string Name, DateTimeOffset CreatedAt);

public sealed record DataSourceAddedToGroup(Guid GroupId, Guid DataSourceId, Guid AgentId, DataSourceKind Kind, string Path, DateTimeOffset AddedAt);

public sealed record ProtectionGroup(Guid Id, string Name, IReadOnlyList<Guid> DataSourceIds)
{
    public static ProtectionGroup? Next(ProtectionGroup? state, object @event) => @event switch
    {
        ProtectionGroupCreated e => new ProtectionGroup(e.GroupId, e.Name, []),
        DataSourceAddedToGroup e when state is not null => state with { DataSourceIds = [.. state.DataSourceIds, e.DataSourceId] },
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
}
