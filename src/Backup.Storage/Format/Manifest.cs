using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Backup.Storage.Format;

[JsonConverter(typeof(JsonStringEnumConverter<EntryKind>))]
public enum EntryKind
{
    Directory = 1,
    File = 2,
    Symlink = 3,
    Fifo = 4,
    CharDevice = 5,
    BlockDevice = 6,
}

/// <summary>
/// One item of a recovery point's tree. <see cref="Path"/> is relative to the protected folder with '/' separators, its names
/// (and a symlink's <see cref="LinkTarget"/>) escaped where they are not UTF-8 (<see cref="ItemName"/>);
/// <see cref="Mode"/> holds the Unix permission bits; <see cref="MtimeUtcTicks"/> is the last write time in .NET ticks
/// (100 ns) since 0001-01-01 UTC. A file's <see cref="Chunks"/> are the ids of its chunks in file order. Files with the same
/// <see cref="LinkGroup"/> (tree format 3) were hard links of one inode: each still lists its chunks, so any one restores alone.
/// A device node has the <see cref="DeviceMajor"/> and <see cref="DeviceMinor"/> numbers of the device it stands for. A sparse
/// file's <see cref="Holes"/> (in order, apart) read as zeros and are not in its chunks, which hold the rest of its bytes.
/// </summary>
public sealed record TreeEntry(
    string Path, EntryKind Kind, long Size, int Mode, long MtimeUtcTicks,
    string? LinkTarget = null, IReadOnlyList<string>? Chunks = null, int? LinkGroup = null, uint? DeviceMajor = null, uint? DeviceMinor = null,
    IReadOnlyList<FileHole>? Holes = null)
{
    /// <summary>The bytes the chunks hold: the size less the holes.</summary>
    [JsonIgnore]
    public long DataSize => Size - (Holes?.Sum(h => h.Length) ?? 0);
}

/// <summary>A stretch of a sparse file that reads as zeros and occupies no space.</summary>
public sealed record FileHole(long Offset, long Length);

/// <summary>An item the agent could not back up, and why; the recovery point is then partial.</summary>
public sealed record SkippedItem(string Path, string Reason);

/// <summary>
/// The tree of one recovery point (format v2, see docs/format.md): every item with its metadata and chunk list.
/// It is stored encrypted, as chunks in packs like file data, so neither the server nor the vault reads names.
/// <see cref="Root"/> is the protected folder's own mode and mtime (path ""), which a full restore gives the restored
/// folder; trees written before it was recorded have none.
/// </summary>
public sealed record Tree(
    int FormatVersion, string SourcePath, IReadOnlyList<TreeEntry> Entries, IReadOnlyList<SkippedItem>? Skipped = null, TreeEntry? Root = null)
{
    /// <summary>3 added hard-link groups, special files, escaped names and holes (all optional: a tree of version 2 reads as it did).</summary>
    public const int CurrentVersion = 3;

    /// <summary>The oldest version still read.</summary>
    public const int OldestReadVersion = 2;

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Contracts.WireJson.Default.Tree);

    /// <summary>The same bytes as <see cref="ToBytes"/>, written to <paramref name="output"/> as they are produced.</summary>
    public void WriteTo(Stream output) => JsonSerializer.Serialize(output, this, Contracts.WireJson.Default.Tree);

    /// <summary>Reads a tree from <paramref name="input"/> without holding its bytes all at once.</summary>
    public static Tree ReadFrom(Stream input)
    {
        try
        {
            return JsonSerializer.Deserialize(input, Contracts.WireJson.Default.Tree) ?? throw new InvalidDataException("The tree is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The tree is not valid JSON: {e.Message}", e);
        }
    }

    public static Tree FromBytes(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, Contracts.WireJson.Default.Tree) ?? throw new InvalidDataException("The tree is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The tree is not valid JSON: {e.Message}", e);
        }
    }

    /// <summary>Problems that make the tree unusable for a restore; empty when it is sound.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (FormatVersion is < OldestReadVersion or > CurrentVersion) errors.Add($"Unsupported tree format version {FormatVersion}.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in Entries ?? [])
        {
            if (string.IsNullOrEmpty(e.Path) || e.Path.StartsWith('/') || e.Path.Split('/').Any(p => p is "" or "." or ".."))
                errors.Add($"Entry path '{e.Path}' must be relative, without empty, '.' or '..' parts.");
            if (!seen.Add(e.Path)) errors.Add($"Entry path '{e.Path}' appears twice.");
            if (!ItemName.IsWellFormed(e.Path)) errors.Add($"Entry path '{e.Path}' is not a well-formed escaped name.");
            if (e.Kind == EntryKind.File)
            {
                if (e.Size < 0) errors.Add($"File '{e.Path}' has a negative size.");
                var chunks = e.Chunks ?? [];
                if (chunks.Any(c => !PackId.IsValid(c))) errors.Add($"File '{e.Path}' names an invalid chunk id.");
                long end = 0;
                foreach (var hole in e.Holes ?? [])
                {
                    if (hole.Offset < end || hole.Length <= 0 || hole.Offset + hole.Length > e.Size)
                        errors.Add($"File '{e.Path}' has a hole at {hole.Offset} (+{hole.Length}) that overlaps another or lies outside it.");
                    end = hole.Offset + hole.Length;
                }
                var holesAside = e.Holes is { Count: > 0 } ? " (its holes aside)" : "";
                if (e.DataSize > 0 && chunks.Count == 0) errors.Add($"File '{e.Path}' has {e.DataSize} bytes{holesAside} but no chunks.");
                if (e.DataSize == 0 && chunks.Count > 0) errors.Add($"File '{e.Path}' is empty{holesAside} but has chunks.");
            }
            if (e.Kind == EntryKind.Symlink && string.IsNullOrEmpty(e.LinkTarget)) errors.Add($"Symlink '{e.Path}' has no target.");
            if (e.LinkGroup is not null && e.Kind != EntryKind.File) errors.Add($"'{e.Path}' is in a hard-link group but is not a file.");
            if (e.Kind is EntryKind.CharDevice or EntryKind.BlockDevice && (e.DeviceMajor is null || e.DeviceMinor is null))
                errors.Add($"Device node '{e.Path}' has no device numbers.");
            if (e.Kind is EntryKind.Fifo or EntryKind.CharDevice or EntryKind.BlockDevice && (e.Size != 0 || e.Chunks is { Count: > 0 }))
                errors.Add($"Special file '{e.Path}' has data.");
        }
        return errors;
    }
}

/// <summary>
/// What the server keeps in plain text for a recovery point (format v2): the chunks holding its encrypted tree and
/// every pack its data lies in, so the server and the vault copy can work without the key.
/// </summary>
public sealed record Manifest(int FormatVersion, Guid RecoveryPointId, IReadOnlyList<string> Tree, IReadOnlyList<string> Packs)
{
    public const int CurrentVersion = 2;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = false };

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Contracts.WireJson.Default.Manifest);

    public static Manifest FromBytes(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return JsonSerializer.Deserialize(bytes, Contracts.WireJson.Default.Manifest) ?? throw new InvalidDataException("The manifest is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"The manifest is not valid JSON: {e.Message}", e);
        }
    }

    public string Sha256() => Convert.ToHexStringLower(SHA256.HashData(ToBytes()));

    public IEnumerable<string> PackIds() => Packs.Distinct(StringComparer.Ordinal);

    /// <summary>Problems that make the manifest unusable; empty when it is sound.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (FormatVersion != CurrentVersion) errors.Add($"Unsupported manifest format version {FormatVersion}.");
        if (Tree is null || Tree.Count == 0) errors.Add("The manifest names no tree chunk.");
        else if (Tree.Any(c => !PackId.IsValid(c))) errors.Add("The manifest names an invalid tree chunk id.");
        if (Packs is null || Packs.Count == 0) errors.Add("The manifest names no pack.");
        else if (Packs.Any(p => !PackId.IsValid(p))) errors.Add("The manifest names an invalid pack id.");
        return errors;
    }
}
