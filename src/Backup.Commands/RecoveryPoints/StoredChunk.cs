namespace Backup.Commands.RecoveryPoints;

/// <summary>
/// The server's chunk index: where one chunk (by its keyed id, 64 hex) is stored on disk. Written with the
/// <see cref="RecoveryPoints.PackWrittenToDisk"/> event of the pack that brought it, never overwritten (the first pack
/// to hold a chunk keeps it), so a recovery point's pack list stays valid. Agents read the ids to skip known chunks.
/// </summary>
public sealed class StoredChunk
{
    public string Id { get; set; } = "";
    public string PackId { get; set; } = "";
    public long Offset { get; set; }
    public int Length { get; set; }
    public int PlainLength { get; set; }

    /// <summary>Where the chunk starts in its blob's plaintext: 0 unless the blob holds a group of small chunks.</summary>
    public int PlainOffset { get; set; }
}
