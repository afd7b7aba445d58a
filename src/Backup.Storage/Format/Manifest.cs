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
}

/// <summary>A slice of a file's bytes stored in a pack.</summary>
public sealed record PackSegment(string PackId, long Offset, long Length);

/// <summary>
/// One item of a recovery point. <see cref="Path"/> is relative to the protected folder with '/' separators;
/// <see cref="Mode"/> holds the Unix permission bits; <see cref="MtimeUtcTicks"/> is the last write time in
/// .NET ticks (100 ns) since 0001-01-01 UTC.
/// </summary>
public sealed record ManifestEntry(
    string Path, EntryKind Kind, long Size, int Mode, long MtimeUtcTicks,
    string? Sha256 = null, string? LinkTarget = null, IReadOnlyList<PackSegment>? Segments = null);

/// <summary>An item the agent could not back up, and why; the recovery point is then partial.</summary>
public sealed record SkippedItem(string Path, string Reason);

/// <summary>The tree of one recovery point (format v1, see docs/format.md).</summary>
public sealed record Manifest(int FormatVersion, Guid RecoveryPointId, string SourcePath, IReadOnlyList<ManifestEntry> Entries, IReadOnlyList<SkippedItem>? Skipped = null)
{
    public const int CurrentVersion = 1;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = false };

    public byte[] ToBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static Manifest FromBytes(ReadOnlySpan<byte> bytes) =>
        JsonSerializer.Deserialize<Manifest>(bytes, Json) ?? throw new InvalidDataException("The manifest is empty.");

    public string Sha256() => Convert.ToHexStringLower(SHA256.HashData(ToBytes()));

    public IEnumerable<string> PackIds() =>
        Entries.SelectMany(e => e.Segments ?? []).Select(s => s.PackId).Distinct(StringComparer.Ordinal);

    /// <summary>Problems that make the manifest unusable for a restore; empty when it is sound.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (FormatVersion != CurrentVersion) errors.Add($"Unsupported manifest format version {FormatVersion}.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in Entries)
        {
            if (string.IsNullOrEmpty(e.Path) || e.Path.StartsWith('/') || e.Path.Split('/').Any(p => p is "" or "." or ".."))
                errors.Add($"Entry path '{e.Path}' must be relative, without empty, '.' or '..' parts.");
            if (!seen.Add(e.Path)) errors.Add($"Entry path '{e.Path}' appears twice.");
            if (e.Kind == EntryKind.File)
            {
                if (e.Size < 0) errors.Add($"File '{e.Path}' has a negative size.");
                if (e.Sha256 is null || !PackId.IsValid(e.Sha256)) errors.Add($"File '{e.Path}' has no valid SHA-256.");
                var segments = e.Segments ?? [];
                if (segments.Sum(s => s.Length) != e.Size) errors.Add($"File '{e.Path}' segments do not add up to its size.");
                if (segments.Any(s => !PackId.IsValid(s.PackId) || s.Offset < 0 || s.Length <= 0))
                    errors.Add($"File '{e.Path}' has an invalid segment.");
            }
            if (e.Kind == EntryKind.Symlink && string.IsNullOrEmpty(e.LinkTarget)) errors.Add($"Symlink '{e.Path}' has no target.");
        }
        return errors;
    }
}
