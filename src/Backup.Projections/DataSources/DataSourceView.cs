using Backup.Commands.DataSources;
using Marten;
using Marten.Events.Projections;
using Mediator;

namespace Backup.Projections.DataSources;

public sealed class DataSourceView
{
    public Guid Id { get; set; }
    public Guid GroupId { get; set; }
    public Guid AgentId { get; set; }
    public DataSourceKind Kind { get; set; }
    public string Path { get; set; } = "";

    public DateTimeOffset ProtectedAt { get; set; }
}

public sealed partial class DataSourceViewProjection : MultiStreamProjection<DataSourceView, Guid>
{
    public DataSourceViewProjection() => Identity<DataSourceProtected>(e => e.DataSourceId);

    public static DataSourceView Create(DataSourceProtected e) => new()
    {
        Id = e.DataSourceId, GroupId = e.GroupId, AgentId = e.AgentId, Kind = e.Kind, Path = e.Path, ProtectedAt = e.ProtectedAt,
    };
}

public sealed record GetDataSource(Guid DataSourceId) : IQuery<DataSourceView?>;

public sealed class GetDataSourceHandler(IQuerySession session) : IQueryHandler<GetDataSource, DataSourceView?>
{
    public async ValueTask<DataSourceView?> Handle(GetDataSource query, CancellationToken ct) =>
        await session.LoadAsync<DataSourceView>(query.DataSourceId, ct);
}
