using System.Text.Json.Serialization;

namespace Backup.Storage.Contracts;

// Wire contracts between the agent and the API. They live here because the agent may see only Backup.Storage.

public sealed record EnrolAgentRequest(string Token, string MachineName);

public sealed record EnrolAgentResponse(Guid AgentId, string Credential);

/// <summary>
/// Every kind of job the catalog knows: the agents' work (<see cref="Backup"/>, <see cref="Restore"/>,
/// <see cref="Synchronisation"/>) and the workers' (<see cref="VaultCopy"/>, <see cref="ConsistencyCheck"/>,
/// <see cref="Retention"/>). Stored by number in the catalog's documents: never renumber.
/// </summary>
public enum JobKind
{
    /// <summary>An agent takes a recovery point to the server's disk.</summary>
    Backup = 1,

    /// <summary>The workers copy a recovery point to the vault (online transfer).</summary>
    VaultCopy = 2,

    /// <summary>An agent restores items of a recovery point, from disk or from the vault.</summary>
    Restore = 3,

    /// <summary>One copy (disk or vault) of a recovery point is read back and checked pack by pack.</summary>
    ConsistencyCheck = 4,

    /// <summary>Retention expires one copy (disk or vault) of a recovery point.</summary>
    Retention = 5,

    /// <summary>
    /// An agent brings the server's copy of the data source up to date: the backup pipeline (new chunks packed and uploaded,
    /// the metadata cache refreshed), ended by POST .../syncs/{jobId}/complete instead of a recovery point.
    /// </summary>
    Synchronisation = 6,
}

/// <summary>What a restore does with an item that already exists at the target.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ExistingItems>))]
public enum ExistingItems
{
    Overwrite = 0,
    Skip = 1,
    KeepBoth = 2,
}

/// <summary>
/// A unit of work handed to an agent. For a backup, <see cref="JobId"/> is the recovery point id; for a restore, the
/// restore id; for a synchronisation, the sync id (<see cref="RecoveryPointId"/> empty).
/// For a restore, <see cref="Paths"/> selects items (null = everything) and <see cref="IfExists"/> says what to
/// do with items already at the target. <see cref="LeaseSeconds"/>: how long the claim holds without a heartbeat
/// (POST .../jobs/{jobId}/heartbeat); 0 from a server without leases. For a backup or synchronisation, <see cref="Include"/> and
/// <see cref="Exclude"/> are the data source's patterns (<see cref="Filtering.PathFilter"/>; null or empty = none).
/// </summary>
public sealed record AgentJob(Guid JobId, [property: JsonConverter(typeof(JsonStringEnumConverter<JobKind>))] JobKind Kind, Guid RecoveryPointId, string Path,
    IReadOnlyList<string>? Paths = null, ExistingItems IfExists = ExistingItems.Overwrite, int LeaseSeconds = 0,
    IReadOnlyList<string>? Include = null, IReadOnlyList<string>? Exclude = null);

/// <summary>The answer to a heartbeat: the job's lease now runs until <see cref="LeaseExpiresAt"/>.</summary>
public sealed record JobLeaseRenewal(Guid JobId, DateTimeOffset LeaseExpiresAt);

/// <summary>A stopping agent gives its running job back (POST .../jobs/{jobId}/release); no reason = "agent stopping".</summary>
public sealed record ReleaseJobRequest(string? Reason);

public sealed record PackStored(string PackId, long Bytes, bool AlreadyPresent);

/// <summary>
/// The commit of a finished backup. <see cref="Tree"/>: the chunk ids (64 hex) holding the encrypted tree, in order;
/// <see cref="Chunks"/>: base64 of every distinct chunk id the files reference, 32 bytes each; <see cref="Skipped"/>:
/// the items the agent could not back up, with the reason (the recovery point is then partial); <see cref="Items"/>: every
/// item of the tree (path relative to the protected folder, kind, size, mtime) for the server's item catalog; no content.
/// <see cref="ItemChanges"/>, instead of <see cref="Items"/>: only what changed since the recovery point the agent catalogued
/// last; the server answers 409 with the problem code <c>item-catalog-base-changed</c> (nothing committed) when that point is
/// no longer the data source's latest in the catalog, and the agent then sends every item.
/// </summary>
public sealed record CompleteBackupRequest(
    IReadOnlyList<string> Tree, string Chunks, int Files, int Directories, long BytesRead,
    IReadOnlyList<Format.SkippedItem>? Skipped = null, IReadOnlyList<CatalogEntry>? Items = null, CatalogChanges? ItemChanges = null);

/// <summary>
/// A recovery point's items as changes against <see cref="Base"/> (the recovery point the agent catalogued last):
/// <see cref="Added"/> new or changed items, <see cref="Removed"/> the paths of items gone or changed (a changed item is in both).
/// </summary>
public sealed record CatalogChanges(Guid Base, IReadOnlyList<CatalogEntry> Added, IReadOnlyList<string> Removed)
{
    /// <summary>The problem code of the server's 409 that refuses changes and asks for every item (nothing was committed).</summary>
    public const string BaseChangedCode = "item-catalog-base-changed";
}

/// <summary>One item of a recovery point for the server's catalog: what a user searches for, never its content.</summary>
public sealed record CatalogEntry(string Path, Format.EntryKind Kind, long Size, DateTimeOffset ModifiedAt);

/// <summary>Body of PUT /api/repository/key: the passphrase that wraps the repository's new master keys (16 characters or more).</summary>
public sealed record CreateRepositoryKeyRequest(string Passphrase);

/// <summary>Body of POST /api/repository/key/passphrase.</summary>
public sealed record ChangePassphraseRequest(string CurrentPassphrase, string NewPassphrase);

public sealed record FailJobRequest(string Reason);

/// <summary><see cref="Failed"/>: items the agent could not write into the target, each with its reason (the rest was restored).</summary>
public sealed record CompleteRestoreRequest(int Files, long Bytes, int SkippedExisting = 0, IReadOnlyList<FailedItem>? Failed = null);

/// <summary>An item a restore could not write, and why (its name, a permission, a full disk, something in the way).</summary>
public sealed record FailedItem(string Path, string Reason);

public static class AgentHeaders
{
    /// <summary>Agents authenticate with "Authorization: Agent {credential}".</summary>
    public const string Scheme = "Agent";

    /// <summary>
    /// On a 204 from <c>jobs/next?wait=N</c>: the server held the poll (its value: for up to how many seconds), so the agent
    /// may poll again at once. A server that answers without it does not know long polling: poll again after the interval.
    /// </summary>
    public const string PollHeld = "Backup-Poll-Held";
}
