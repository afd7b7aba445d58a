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

    /// <summary>Include and exclude patterns relative to the folder (empty: the whole folder).</summary>
    public List<string> Include { get; set; } = [];
    public List<string> Exclude { get; set; } = [];

    /// <summary>Set once protection stopped; <see cref="RemovedData"/> says whether its recovery points were kept or deleted.</summary>
    public DateTimeOffset? RemovedAt { get; set; }
    public DataOnRemoval? RemovedData { get; set; }

    /// <summary>
    /// The data source stream's version: the API's ETag, and what a filter edit names in If-Match. Not "Version", which Marten
    /// would fill in itself for a multi-stream view.
    /// </summary>
    public int StreamVersion { get; set; }
}

public sealed partial class DataSourceViewProjection : MultiStreamProjection<DataSourceView, Guid>
{
    public DataSourceViewProjection()
    {
        Identity<DataSourceProtected>(e => e.DataSourceId);
        Identity<DataSourceFiltersSet>(e => e.DataSourceId);
        Identity<DataSourceRemoved>(e => e.DataSourceId);
    }

    public static DataSourceView Create(DataSourceProtected e) => new()
    {
        Id = e.DataSourceId, GroupId = e.GroupId, AgentId = e.AgentId, Kind = e.Kind, Path = e.Path, ProtectedAt = e.ProtectedAt, StreamVersion = 1,
    };

    public static void Apply(DataSourceFiltersSet e, DataSourceView view)
    {
        view.Include = [.. e.Include];
        view.Exclude = [.. e.Exclude];
        view.StreamVersion++;
    }

    public static void Apply(DataSourceRemoved e, DataSourceView view)
    {
        view.RemovedAt = e.RemovedAt;
        view.RemovedData = e.Data;
        view.StreamVersion++;
    }
}

public sealed record GetDataSource(Guid DataSourceId) : IQuery<DataSourceView?>;

public sealed class GetDataSourceHandler(IQuerySession session) : IQueryHandler<GetDataSource, DataSourceView?>
{
    public async ValueTask<DataSourceView?> Handle(GetDataSource query, CancellationToken ct) =>
        await session.LoadAsync<DataSourceView>(query.DataSourceId, ct);
}
