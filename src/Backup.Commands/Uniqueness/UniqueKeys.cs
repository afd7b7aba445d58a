using Backup.Commands.Access;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Marten.Events.Aggregation;
using Marten.Events.Projections;

namespace Backup.Commands.Uniqueness;

/// <summary>
/// Command-side reservations behind the "unique" rules. Handlers look a key up before appending, so an
/// ordinary duplicate is refused without touching the event store; the unique index on the key (inline,
/// same transaction as the events) settles two requests racing for the same key.
/// </summary>
public sealed class ProtectionGroupName
{
    public Guid Id { get; set; }
    public string NameKey { get; set; } = "";

    public static string KeyOf(string name) => name.Trim().ToUpperInvariant();
}

public sealed partial class ProtectionGroupNameProjection : SingleStreamProjection<ProtectionGroupName, Guid>
{
    public static ProtectionGroupName Create(ProtectionGroupCreated e) => new() { Id = e.GroupId, NameKey = ProtectionGroupName.KeyOf(e.Name) };
}

public sealed class ProtectedFolder
{
    public Guid Id { get; set; }
    public string Key { get; set; } = "";

    public static string KeyOf(Guid agentId, string path) => $"{agentId:N}:{path}";
}

public sealed partial class ProtectedFolderProjection : MultiStreamProjection<ProtectedFolder, Guid>
{
    public ProtectedFolderProjection()
    {
        Identity<DataSourceProtected>(e => e.DataSourceId);
        Identity<DataSourceRemoved>(e => e.DataSourceId);
    }

    public static ProtectedFolder Create(DataSourceProtected e) => new() { Id = e.DataSourceId, Key = ProtectedFolder.KeyOf(e.AgentId, e.Path) };

    /// <summary>A folder removed from protection (either way) may be protected again, as a new data source.</summary>
    public static bool ShouldDelete(DataSourceRemoved _) => true;
}

/// <summary>
/// A key name stays taken after its key is revoked: the audit trail names people by key ("user:&lt;name&gt;"), and a
/// reused name would blur who did what.
/// </summary>
public sealed class ApiKeyName
{
    public Guid Id { get; set; }
    public string NameKey { get; set; } = "";

    public static string KeyOf(string name) => name.Trim().ToUpperInvariant();
}

public sealed partial class ApiKeyNameProjection : SingleStreamProjection<ApiKeyName, Guid>
{
    public static ApiKeyName Create(ApiKeyIssued e) => new() { Id = e.KeyId, NameKey = ApiKeyName.KeyOf(e.Name) };
}
