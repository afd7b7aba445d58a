namespace Backup.Storage.Format;

/// <summary>A pack is named by the lowercase hex SHA-256 of its bytes, so any copy can be verified against its name.</summary>
public static class PackId
{
    public static bool IsValid(string? id) =>
        id is { Length: 64 } && id.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');
}
