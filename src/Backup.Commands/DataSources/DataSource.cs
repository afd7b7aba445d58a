using System.Text.Json.Serialization;

namespace Backup.Commands.DataSources;

/// <summary>What an agent protects. Only folders are backed up so far; volumes, databases and system state follow.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DataSourceKind>))]
public enum DataSourceKind
{
    Folder = 1,
}

public sealed record DataSourceProtected(Guid DataSourceId, Guid GroupId, Guid AgentId, DataSourceKind Kind, string Path, DateTimeOffset ProtectedAt);

public sealed record DataSource(Guid Id, Guid GroupId, Guid AgentId, DataSourceKind Kind, string Path)
{
    public static DataSource? Next(DataSource? state, object @event) => @event switch
    {
        DataSourceProtected e => new DataSource(e.DataSourceId, e.GroupId, e.AgentId, e.Kind, e.Path),
        _ => state,
    };
}
