using Backup.Commands.Common;

namespace Backup.Commands.Alerts;

/// <summary>
/// What an alert is about. The subject is a data source, an agent or a recovery point, by kind. Stored as a number (no
/// string converter on the type), so that Marten's LINQ filters on it match; the API shows names.
/// </summary>
public enum AlertKind
{
    /// <summary>No recovery point of a data source for longer than its group's alert threshold. Subject: the data source.</summary>
    MissedBackup = 1,

    /// <summary>The latest backup of a data source failed (by the agent, or "agent lost" after lease retries). Subject: the data source.</summary>
    BackupFailed = 2,

    /// <summary>An agent has not polled for jobs for longer than the configured time. Subject: the agent.</summary>
    AgentLost = 3,

    /// <summary>The online copy of a recovery point failed. Subject: the recovery point.</summary>
    VaultTransferFailed = 4,

    /// <summary>
    /// The latest synchronisation of a data source failed and no recovery point was created since (a backup carries its own
    /// synchronisation). Subject: the data source.
    /// </summary>
    SyncFailed = 5,
}

/// <summary>The alert's condition holds (again). The ids besides the subject say where it belongs, for filters.</summary>
public sealed record AlertRaised(
    Guid AlertId, AlertKind Kind, Guid SubjectId, Guid? GroupId, Guid? DataSourceId, Guid? AgentId, Guid? RecoveryPointId,
    string Message, DateTimeOffset RaisedAt);

/// <summary>The alert's condition cleared (a recovery point was created, the agent polled, the copy completed).</summary>
public sealed record AlertResolved(Guid AlertId, AlertKind Kind, string Resolution, DateTimeOffset ResolvedAt);

/// <summary>Where a raised alert belongs, besides its subject.</summary>
public sealed record AlertScope(Guid? GroupId = null, Guid? DataSourceId = null, Guid? AgentId = null, Guid? RecoveryPointId = null);

/// <summary>
/// One alert per kind and subject, on a stream whose id is derived from both: every worker that sees the condition
/// decides on the same stream, and the expected-version append lets exactly one of them raise (or resolve) it. An alert
/// that was resolved is raised again on the same stream when its condition comes back.
/// </summary>
public sealed record Alert(Guid Id, AlertKind Kind, Guid SubjectId, bool Active, int Occurrences)
{
    public static Guid IdFor(AlertKind kind, Guid subjectId) => DeterministicGuid.Create($"alert:{Key(kind)}:{subjectId:N}");

    // Spelled out rather than taken from the enum's names, so that renaming a member never changes an alert's id.
    private static string Key(AlertKind kind) => kind switch
    {
        AlertKind.MissedBackup => "missed-backup",
        AlertKind.BackupFailed => "backup-failed",
        AlertKind.AgentLost => "agent-lost",
        AlertKind.VaultTransferFailed => "vault-transfer-failed",
        AlertKind.SyncFailed => "sync-failed",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown alert kind."),
    };

    public static Alert? Next(Alert? state, object @event) => @event switch
    {
        AlertRaised e => new Alert(e.AlertId, e.Kind, e.SubjectId, true, (state?.Occurrences ?? 0) + 1),
        AlertResolved when state is not null => state with { Active = false },
        _ => state,
    };

    /// <summary>Null when the alert is already active: a condition that persists is one alert, not one per check.</summary>
    public static AlertRaised? Raise(Alert? alert, AlertKind kind, Guid subjectId, AlertScope scope, string message, DateTimeOffset now) =>
        alert is { Active: true }
            ? null
            : new AlertRaised(IdFor(kind, subjectId), kind, subjectId, scope.GroupId, scope.DataSourceId, scope.AgentId, scope.RecoveryPointId, message, now);

    /// <summary>Null when there is nothing to resolve (never raised, or already resolved).</summary>
    public static AlertResolved? Resolve(Alert? alert, string resolution, DateTimeOffset now) =>
        alert is { Active: true } ? new AlertResolved(alert.Id, alert.Kind, resolution, now) : null;
}
