using System.Security.Cryptography;

namespace Backup.UnitTests.Engine;

/// <summary>What a user would compare between an original folder and its restore, per item, without following symlinks.</summary>
public sealed record TreeItem(string Path, string Kind, string? Sha256, long Size, UnixFileMode? Mode, DateTime? MtimeUtc, string? LinkTarget);

internal static class TreeSnapshot
{
    public static IReadOnlyDictionary<string, TreeItem> Of(string root)
    {
        var items = new SortedDictionary<string, TreeItem>(StringComparer.Ordinal);
        Walk(new DirectoryInfo(root), "", items);
        return items;
    }

    private static void Walk(DirectoryInfo dir, string relative, IDictionary<string, TreeItem> items)
    {
        foreach (var child in dir.GetFileSystemInfos())
        {
            var path = relative == "" ? child.Name : $"{relative}/{child.Name}";
            if (child.LinkTarget is { } target)
            {
                items[path] = new TreeItem(path, "symlink", null, 0, null, null, target);
            }
            else if (child is DirectoryInfo sub)
            {
                items[path] = new TreeItem(path, "directory", null, 0, sub.UnixFileMode, sub.LastWriteTimeUtc, null);
                Walk(sub, path, items);
            }
            else if (child is FileInfo file)
            {
                string sha;
                using (var stream = file.OpenRead()) sha = Convert.ToHexStringLower(SHA256.HashData(stream));
                items[path] = new TreeItem(path, "file", sha, file.Length, file.UnixFileMode, file.LastWriteTimeUtc, null);
            }
        }
    }
}
