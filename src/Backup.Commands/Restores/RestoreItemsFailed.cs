namespace Backup.Commands.Restores;

public sealed record RestoreItemFailure(string Path, string Reason);

/// <summary>
/// The items a restore could not write into its target (a name too long, a permission, a full disk, something in the way),
/// with the reasons, at most <see cref="MaxRecorded"/> of them (<see cref="Total"/> counts all); everything else was
/// restored. Appended just before the restore's <c>RestoreCompleted</c>, which then means "completed with errors".
/// </summary>
public sealed record RestoreItemsFailed(Guid RestoreId, IReadOnlyList<RestoreItemFailure> Items, int Total, DateTimeOffset RecordedAt)
{
    /// <summary>Enough to act on; a target that refuses everything would otherwise put every item of the point in one event.</summary>
    public const int MaxRecorded = 1_000;

    public static RestoreItemsFailed Of(Guid restoreId, IReadOnlyList<RestoreItemFailure> failed, DateTimeOffset now) =>
        new(restoreId, failed.Take(MaxRecorded).ToList(), failed.Count, now);
}
