using Backup.Commands.RecoveryPoints;

namespace Backup.Commands.CollectingGarbage;

/// <summary>
/// Garbage collection, step one on the disk tier: these packs were referenced by no recovery point that still needs the
/// disk, nor written by a running backup. Their chunks stop being offered to agents as known; the packs themselves are
/// deleted only once every backup that was running at this moment (<see cref="WaitingFor"/>) has ended, unless a commit
/// or a new pack needed them again meanwhile.
/// </summary>
public sealed record PacksCondemned(Guid CollectionId, IReadOnlyList<string> PackIds, long Bytes, IReadOnlyList<Guid> WaitingFor, DateTimeOffset CondemnedAt);

/// <summary>
/// Garbage collection deleted packs (and the manifests of recovery points no longer kept there) from one tier.
/// <see cref="Kept"/> names condemned packs a backup needed again before they were deleted.
/// </summary>
public sealed record PacksDeleted(
    Guid CollectionId, StorageTier Tier, IReadOnlyList<string> PackIds, long Bytes, IReadOnlyList<string> Kept,
    IReadOnlyList<Guid> ManifestsOf, DateTimeOffset DeletedAt);

/// <summary>The events of one garbage collection: what the collector found is its own decision; what it records, this.</summary>
public static class PackCollection
{
    /// <summary>Disk packs no kept point needs, condemned until every job running now (<paramref name="waitingFor"/>) has ended.</summary>
    public static PacksCondemned Condemn(Guid collectionId, IReadOnlyList<(string PackId, long Bytes)> packs, IReadOnlyList<Guid> waitingFor, DateTimeOffset now) =>
        new(collectionId, [.. packs.Select(p => p.PackId)], packs.Sum(p => p.Bytes), waitingFor, now);

    /// <summary>
    /// Packs deleted from <paramref name="tier"/> with the bytes they freed; <paramref name="kept"/>: condemned packs needed
    /// again meanwhile; <paramref name="manifestsOf"/>: recovery points whose manifest went too.
    /// </summary>
    public static PacksDeleted Delete(
        Guid collectionId, StorageTier tier, IReadOnlyList<(string PackId, long Bytes)> packs, IReadOnlyList<string> kept, IReadOnlyList<Guid> manifestsOf,
        DateTimeOffset now) =>
        new(collectionId, tier, [.. packs.Select(p => p.PackId)], packs.Sum(p => p.Bytes), kept, manifestsOf, now);
}

/// <summary>A pack condemned on disk and not yet deleted: its chunks are not offered to agents as known.</summary>
public sealed class CondemnedPack
{
    /// <summary>The pack id.</summary>
    public string Id { get; set; } = "";
    public Guid CollectionId { get; set; }
    public long Bytes { get; set; }
    public DateTimeOffset CondemnedAt { get; set; }
}

/// <summary>One condemnation, until its packs are deleted or kept: the backups it waits for.</summary>
public sealed class Condemnation
{
    public Guid Id { get; set; }
    public List<Guid> WaitingFor { get; set; } = [];

    /// <summary>The packs condemned; those no longer <see cref="CondemnedPack"/> were needed again meanwhile.</summary>
    public List<string> PackIds { get; set; } = [];
    public DateTimeOffset CondemnedAt { get; set; }
}
