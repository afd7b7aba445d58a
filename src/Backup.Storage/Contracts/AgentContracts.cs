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
public sealed record AgentJob(Guid JobId, AgentJobKind Kind, Guid RecoveryPointId, string Path);

public sealed record PackStored(string PackId, long Bytes, bool AlreadyPresent);

public sealed record CompleteBackupRequest(Format.Manifest Manifest);

public sealed record FailJobRequest(string Reason);

public sealed record CompleteRestoreRequest(int Files, long Bytes);

public static class AgentHeaders
{
    /// <summary>Agents authenticate with "Authorization: Agent {credential}".</summary>
    public const string Scheme = "Agent";
}
