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
