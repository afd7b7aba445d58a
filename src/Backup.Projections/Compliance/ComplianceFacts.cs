using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;

namespace Backup.Projections.Compliance;

/// <summary>A recovery point held on the server's disk: which one, and when it was created.</summary>
public sealed record HeldPoint(Guid Id, DateTimeOffset CreatedAt);

/// <summary>A copy that the last consistency check of it found damaged (missing or corrupt packs), since when.</summary>
public sealed record InconsistentCopy(Guid RecoveryPointId, StorageTier Tier, int DamagedPacks, DateTimeOffset Since);

/// <summary>
/// What the events say about one data source at one moment: the policy in force and what its recovery points are. The
/// compliance projection appends one of these per change, stamped with the time it became true, so compliance at any
/// instant T is <see cref="ComplianceEvaluation.Evaluate"/> of the facts valid at T, evaluated at T.
/// Part of the stored snapshots (jsonb): add members, never reshape or remove one.
/// </summary>
public sealed record ComplianceFacts
{
    public Guid DataSourceId { get; init; }
    public Guid GroupId { get; init; }
    public Guid AgentId { get; init; }
    public string Path { get; init; } = "";
    public DateTimeOffset ProtectedAt { get; init; }

    public ShortTermPolicy? ShortTerm { get; init; }
    public DateTimeOffset? ShortTermSetAt { get; init; }

    /// <summary>The most recovery points the short-term policy keeps on disk (from <see cref="ShortTermPolicySet"/>).</summary>
    public int? RecoveryPointsKeptOnDisk { get; init; }
    public OnlinePolicy? Online { get; init; }
    public DateTimeOffset? OnlineSetAt { get; init; }

    public Guid? LastRecoveryPointId { get; init; }
    public DateTimeOffset? LastRecoveryPointAt { get; init; }

    /// <summary>Created and not expired from disk, oldest first.</summary>
    public IReadOnlyList<HeldPoint> OnDisk { get; init; } = [];

    /// <summary>Creation time of the newest recovery point whose copy reached the vault, and when that copy completed.</summary>
    public DateTimeOffset? NewestVaultPointCreatedAt { get; init; }
    public DateTimeOffset? NewestVaultCopyAt { get; init; }

    public IReadOnlyList<InconsistentCopy> Damaged { get; init; } = [];
}
