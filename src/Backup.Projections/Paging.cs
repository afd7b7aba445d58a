namespace Backup.Projections;

// What every paged list of the read side shares: a page, and keyset cursors over the event log (CursorText makes them opaque).

/// <summary>A page of results and the cursor for the next page (null on the last page).</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, string? NextAfter);

/// <summary>
/// An opaque keyset cursor over a global event sequence (unique and in log order, so paging is stable while new items
/// arrive), tagged per list so a cursor of one list is refused by another.
/// </summary>
public sealed class SequenceCursor(string prefix)
{
    /// <summary>Recovery points, by the sequence of their BackupRequested.</summary>
    public static readonly SequenceCursor RecoveryPoints = new("rp:");

    /// <summary>Jobs, by the sequence of the event that opened each.</summary>
    public static readonly SequenceCursor Jobs = new("job:");

    public string Encode(long sequence) => CursorText.Encode($"{prefix}{sequence}");

    public bool TryDecode(string cursor, out long sequence)
    {
        sequence = 0;
        return CursorText.TryDecode(cursor, prefix, out var position) && long.TryParse(position, out sequence) && sequence > 0;
    }
}
