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

    /// <summary>When the data source was removed from protection; it is not reported as of that instant or later.</summary>
    public DateTimeOffset? RemovedAt { get; init; }

    public ShortTermPolicy? ShortTerm { get; init; }
    public DateTimeOffset? ShortTermSetAt { get; init; }

    /// <summary>The most recovery points the short-term policy keeps on disk (from <see cref="ShortTermPolicySet"/>).</summary>
    public int? RecoveryPointsKeptOnDisk { get; init; }
    public OnlinePolicy? Online { get; init; }
    public DateTimeOffset? OnlineSetAt { get; init; }

    public Guid? LastRecoveryPointId { get; init; }
    public DateTimeOffset? LastRecoveryPointAt { get; init; }

    /// <summary>Created and not expired from disk, oldest first. The projection's own state; snapshot rows written since
    /// snapshot format 2 carry <see cref="OnDiskTicks"/> instead and leave this empty.</summary>
    public IReadOnlyList<HeldPoint> OnDisk { get; init; } = [];

    /// <summary>
    /// The creation times (UTC ticks) of the recovery points held on disk, oldest first: all that compliance reads of them, at a
    /// fifth of <see cref="OnDisk"/>'s size in every snapshot row. Null in rows written before it (they carry <see cref="OnDisk"/>).
    /// </summary>
    public IReadOnlyList<long>? OnDiskTicks { get; init; }

    /// <summary>The creation times of the recovery points held on disk, oldest first, from whichever form the row has.</summary>
    public IEnumerable<DateTimeOffset> HeldOnDisk() =>
        OnDiskTicks is { } ticks ? ticks.Select(t => new DateTimeOffset(t, TimeSpan.Zero)) : OnDisk.Select(p => p.CreatedAt);

    /// <summary>These facts as a snapshot row keeps them: held points as times only.</summary>
    public ComplianceFacts ForSnapshot() => this with { OnDisk = [], OnDiskTicks = [.. OnDisk.Select(p => p.CreatedAt.UtcTicks)] };

    /// <summary>Creation time of the newest recovery point whose copy reached the vault, and when that copy completed.</summary>
    public DateTimeOffset? NewestVaultPointCreatedAt { get; init; }
    public DateTimeOffset? NewestVaultCopyAt { get; init; }

    public IReadOnlyList<InconsistentCopy> Damaged { get; init; } = [];
}
