using System.Text.Json.Serialization;

namespace Backup.Storage.Contracts;

// Wire contracts between the agent and the API. They live here because the agent may see only Backup.Storage.

public sealed record EnrolAgentRequest(string Token, string MachineName);

public sealed record EnrolAgentResponse(Guid AgentId, string Credential);

[JsonConverter(typeof(JsonStringEnumConverter<AgentJobKind>))]
public enum AgentJobKind
{
    Backup = 1,
    Restore = 2,
}

/// <summary>A unit of work handed to an agent. For a backup, <see cref="JobId"/> is the recovery point id; for a restore, the restore id.</summary>
/// <summary>What a restore does with an item that already exists at the target.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ExistingItems>))]
public enum ExistingItems
{
    Overwrite = 0,
    Skip = 1,
    KeepBoth = 2,
}

/// <summary>
/// For a restore, <see cref="Paths"/> selects items (null = everything) and <see cref="IfExists"/> says what to
/// do with items already at the target. <see cref="LeaseSeconds"/>: how long the claim holds without a heartbeat
/// (POST .../jobs/{jobId}/heartbeat); 0 from a server without leases.
/// </summary>
public sealed record AgentJob(Guid JobId, AgentJobKind Kind, Guid RecoveryPointId, string Path,
    IReadOnlyList<string>? Paths = null, ExistingItems IfExists = ExistingItems.Overwrite, int LeaseSeconds = 0);

/// <summary>The answer to a heartbeat: the job's lease now runs until <see cref="LeaseExpiresAt"/>.</summary>
public sealed record JobLeaseRenewal(Guid JobId, DateTimeOffset LeaseExpiresAt);

public sealed record PackStored(string PackId, long Bytes, bool AlreadyPresent);

public sealed record CompleteBackupRequest(Format.Manifest Manifest);

public sealed record FailJobRequest(string Reason);

public sealed record CompleteRestoreRequest(int Files, long Bytes, int SkippedExisting = 0);

public static class AgentHeaders
{
    /// <summary>Agents authenticate with "Authorization: Agent {credential}".</summary>
    public const string Scheme = "Agent";
}
