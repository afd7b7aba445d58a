using System.Text.Json.Serialization;
using Backup.Commands.Common;
using Backup.Commands.ProtectionGroups;

namespace Backup.Commands.DataSources;

/// <summary>What an agent protects. Only folders are backed up so far; volumes, databases and system state follow.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DataSourceKind>))]
public enum DataSourceKind
{
    Folder = 1,
}

/// <summary>What becomes of a data source's recovery points when it is removed from protection.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<DataOnRemoval>))]
public enum DataOnRemoval
{
    /// <summary>They stay until retention expires them.</summary>
    Retain = 1,

    /// <summary>Every one of them is deleted (the garbage collector then treats their packs as no longer live).</summary>
    Delete = 2,
}

public sealed record DataSourceProtected(Guid DataSourceId, Guid GroupId, Guid AgentId, DataSourceKind Kind, string Path, DateTimeOffset ProtectedAt);

/// <summary>
/// The include and exclude patterns (<c>Backup.Storage.Filtering.PathFilter</c>) the agent honours from its next backup of the
/// data source on; both lists empty means the whole folder.
/// </summary>
public sealed record DataSourceFiltersSet(Guid DataSourceId, IReadOnlyList<string> Include, IReadOnlyList<string> Exclude, DateTimeOffset SetAt);

/// <summary>Protection stopped: no further backups; <see cref="Data"/> says whether its recovery points are kept or deleted.</summary>
public sealed record DataSourceRemoved(Guid DataSourceId, Guid GroupId, Guid AgentId, string Path, DataOnRemoval Data, DateTimeOffset RemovedAt);

public sealed record DataSource(
    Guid Id, Guid GroupId, Guid AgentId, DataSourceKind Kind, string Path,
    IReadOnlyList<string> Include, IReadOnlyList<string> Exclude, DataOnRemoval? Removed = null)
{
    public static DataSource? Next(DataSource? state, object @event) => @event switch
    {
        DataSourceProtected e => new DataSource(e.DataSourceId, e.GroupId, e.AgentId, e.Kind, e.Path, [], []),
        DataSourceFiltersSet e when state is not null => state with { Include = e.Include, Exclude = e.Exclude },
        DataSourceRemoved e when state is not null => state with { Removed = e.Data },
        _ => state,
    };

    /// <summary>Patterns are normalised (duplicates dropped, order kept); their syntax is the validator's job.</summary>
    public static DataSourceFiltersSet SetFilters(
        DataSource? source, Guid dataSourceId, IEnumerable<string>? include, IEnumerable<string>? exclude, DateTimeOffset now)
    {
        var current = Protected(source, dataSourceId);
        return new DataSourceFiltersSet(current.Id, Distinct(include), Distinct(exclude), now);
    }

    public static (DataSourceRemoved Removed, DataSourceRemovedFromGroup FromGroup) Remove(
        DataSource? source, Guid dataSourceId, DataOnRemoval data, DateTimeOffset now)
    {
        var current = Protected(source, dataSourceId);
        return (new DataSourceRemoved(current.Id, current.GroupId, current.AgentId, current.Path, data, now),
                new DataSourceRemovedFromGroup(current.GroupId, current.Id, now));
    }

    /// <summary>A backup may be requested or started only while the data source is protected.</summary>
    public static DataSource Protected(DataSource? source, Guid dataSourceId)
    {
        if (source is null) throw new NotFoundException("Data source", dataSourceId);
        if (source.Removed is { } data)
            throw new ConflictException($"Data source {dataSourceId} ({source.Path}) was removed from protection ({data.ToString().ToLowerInvariant()} data).");
        return source;
    }

    private static List<string> Distinct(IEnumerable<string>? patterns) => (patterns ?? []).Distinct(StringComparer.Ordinal).ToList();
}
