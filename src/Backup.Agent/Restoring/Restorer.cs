using System.Security.Cryptography;
using Backup.Storage.Contracts;
using Backup.Storage.Format;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.Restoring;

public sealed record RestoreResult(int Files, long Bytes, int SkippedExisting = 0);

/// <summary>Which items to restore (null = all; a directory brings everything under it) and what to do with items already there.</summary>
public sealed record RestoreOptions(IReadOnlyList<string>? Paths = null, ExistingItems IfExists = ExistingItems.Overwrite)
{
    public static readonly RestoreOptions Everything = new();
}

/// <summary>
/// Rebuilds a recovery point, or selected items of it, under a target folder. Each pack is fetched once into
/// scratch space, checked against its id (its SHA-256), used for every file that needs it and deleted after its
/// last use; every restored file is checked against the SHA-256 in the manifest before it counts as restored.
/// </summary>
public sealed class Restorer(ILogger log)
{
    public delegate Task FetchPack(string packId, Stream destination, CancellationToken ct);

    public Task<RestoreResult> RestoreAsync(Manifest manifest, string targetRoot, string scratch, FetchPack fetch, CancellationToken ct) =>
        RestoreAsync(manifest, targetRoot, scratch, fetch, RestoreOptions.Everything, ct);

    public async Task<RestoreResult> RestoreAsync(
        Manifest manifest, string targetRoot, string scratch, FetchPack fetch, RestoreOptions options, CancellationToken ct)
    {
        var problems = manifest.Validate();
        if (problems.Count > 0) throw new InvalidDataException("The manifest is damaged: " + string.Join(" ", problems));
        var entries = Select(manifest.Entries, options.Paths);

        var target = Path.GetFullPath(targetRoot);
        Directory.CreateDirectory(target);
        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Count; i++)
            foreach (var s in entries[i].Segments ?? []) lastUse[s.PackId] = i;

        var cached = new Dictionary<string, string>(StringComparer.Ordinal);
        var written = new List<(ManifestEntry Entry, string Path)>();
        int files = 0, skipped = 0;
        long bytes = 0;
        try
        {
            for (var i = 0; i < entries.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var entry = entries[i];
                var path = TargetPath(target, entry.Path);
                if (entry.Kind != EntryKind.Directory && Occupied(path))
                {
                    if (options.IfExists == ExistingItems.Skip)
                    {
                        skipped++;
                        Release(entry, i, lastUse, cached);
                        continue;
                    }
                    if (options.IfExists == ExistingItems.KeepBoth) path = FreeName(path);
                }
                switch (entry.Kind)
                {
                    case EntryKind.Directory:
                        Directory.CreateDirectory(path);
                        break;
                    case EntryKind.Symlink:
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        if (Occupied(path)) File.Delete(path);
                        File.CreateSymbolicLink(path, entry.LinkTarget!);
                        break;
                    case EntryKind.File:
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        await RestoreFileAsync(entry, path, scratch, cached, fetch, ct);
                        files++;
                        bytes += entry.Size;
                        break;
                }
                written.Add((entry, path));
                Release(entry, i, lastUse, cached);
            }

            // Metadata last: writing a file changes its directory's mtime, and a read-only directory refuses new files.
            foreach (var (entry, path) in written.Where(w => w.Entry.Kind != EntryKind.Directory)) ApplyMetadata(entry, path);
            foreach (var (entry, path) in written.Where(w => w.Entry.Kind == EntryKind.Directory).OrderByDescending(w => w.Entry.Path.Count(c => c == '/')))
                ApplyMetadata(entry, path);
        }
        finally
        {
            foreach (var file in cached.Values) File.Delete(file);
        }
        log.LogInformation("Restored {Files} files, {Bytes} bytes to {Target}; {Skipped} existing items left as they were", files, bytes, target, skipped);
        return new RestoreResult(files, bytes, skipped);
    }

    /// <summary>The selected items, their contents when they are directories, and their parent directories (for modes and mtimes).</summary>
    public static IReadOnlyList<ManifestEntry> Select(IReadOnlyList<ManifestEntry> all, IReadOnlyList<string>? paths)
    {
        if (paths is null) return all;
        var wanted = paths.Select(p => p.Trim('/')).ToHashSet(StringComparer.Ordinal);
        var known = all.Select(e => e.Path).ToHashSet(StringComparer.Ordinal);
        var missing = wanted.Where(w => !known.Contains(w)).ToList();
        if (missing.Count > 0) throw new InvalidDataException($"Not in this recovery point: {string.Join(", ", missing.Take(5))}.");
        var parents = wanted.SelectMany(Ancestors).ToHashSet(StringComparer.Ordinal);
        return all.Where(e => wanted.Contains(e.Path) || parents.Contains(e.Path) || Ancestors(e.Path).Any(wanted.Contains)).ToList();
    }

    private static IEnumerable<string> Ancestors(string path)
    {
        for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
            yield return path[..slash];
    }

    private static bool Occupied(string path) => Path.Exists(path) || new FileInfo(path).LinkTarget is not null;

    /// <summary>"report.txt" → "report (restored).txt", then "report (restored 2).txt", … — Azure Backup's "keep both".</summary>
    private static string FreeName(string path)
    {
        var dir = Path.GetDirectoryName(path)!;
        var stem = Path.GetFileNameWithoutExtension(path);
        var extension = Path.GetExtension(path);
        for (var n = 1; ; n++)
        {
            var candidate = Path.Combine(dir, n == 1 ? $"{stem} (restored){extension}" : $"{stem} (restored {n}){extension}");
            if (!Occupied(candidate)) return candidate;
        }
    }

    private static void Release(ManifestEntry entry, int index, Dictionary<string, int> lastUse, Dictionary<string, string> cached)
    {
        foreach (var packId in (entry.Segments ?? []).Select(s => s.PackId).Distinct())
        {
            if (lastUse[packId] == index && cached.Remove(packId, out var done)) File.Delete(done);
        }
    }

    private static async Task RestoreFileAsync(
        ManifestEntry entry, string path, string scratch, Dictionary<string, string> cached, FetchPack fetch, CancellationToken ct)
    {
        var tmp = path + ".restoring";
        try
        {
            await WriteVerifiedAsync(entry, tmp, scratch, cached, fetch, ct);
        }
        catch
        {
            // Never leave a half-written or unverified file in the user's folder.
            File.Delete(tmp);
            throw;
        }
        File.Move(tmp, path, overwrite: true);
    }

    private static async Task WriteVerifiedAsync(
        ManifestEntry entry, string tmp, string scratch, Dictionary<string, string> cached, FetchPack fetch, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using (var output = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
        {
            var buffer = new byte[1 << 20];
            foreach (var segment in entry.Segments ?? [])
            {
                var pack = await PackFileAsync(segment.PackId, scratch, cached, fetch, ct);
                await using var input = new FileStream(pack, FileMode.Open, FileAccess.Read, FileShare.Read, 1, useAsync: true);
                if (segment.Offset + segment.Length > input.Length)
                    throw new InvalidDataException($"Pack {segment.PackId} is shorter than the manifest says (needed for {entry.Path}).");
                input.Position = segment.Offset;
                var remaining = segment.Length;
                while (remaining > 0)
                {
                    var n = await input.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), ct);
                    if (n == 0) throw new EndOfStreamException($"Pack {segment.PackId} ended early.");
                    hash.AppendData(buffer, 0, n);
                    await output.WriteAsync(buffer.AsMemory(0, n), ct);
                    remaining -= n;
                }
            }
        }
        var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (!string.Equals(actual, entry.Sha256, StringComparison.Ordinal))
            throw new InvalidDataException($"{entry.Path} does not match its recorded SHA-256 after restore; it was not written.");
    }

    private static async Task<string> PackFileAsync(string packId, string scratch, Dictionary<string, string> cached, FetchPack fetch, CancellationToken ct)
    {
        if (cached.TryGetValue(packId, out var existing)) return existing;
        var file = Path.Combine(scratch, $"restore-{packId}");
        try
        {
            await using var output = new FileStream(file, FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
            await fetch(packId, output, ct);
            await output.FlushAsync(ct);
            output.Position = 0;
            var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(output, ct));
            if (!string.Equals(actual, packId, StringComparison.Ordinal))
                throw new InvalidDataException($"Pack {packId} is corrupt: its content hashes to {actual}.");
        }
        catch
        {
            File.Delete(file);
            throw;
        }
        cached[packId] = file;
        return file;
    }

    private static void ApplyMetadata(ManifestEntry entry, string path)
    {
        if (entry.Kind == EntryKind.Symlink) return; // Linux cannot chmod a symlink; its own mtime is not worth an lutimes P/Invoke yet.
        if (!OperatingSystem.IsWindows() && entry.Mode != 0) File.SetUnixFileMode(path, (UnixFileMode)entry.Mode);
        var mtime = new DateTime(entry.MtimeUtcTicks, DateTimeKind.Utc);
        if (entry.Kind == EntryKind.Directory) Directory.SetLastWriteTimeUtc(path, mtime);
        else File.SetLastWriteTimeUtc(path, mtime);
    }

    /// <summary>Maps a manifest path under the target, refusing anything that would land outside it.</summary>
    private static string TargetPath(string target, string relative)
    {
        var full = Path.GetFullPath(Path.Combine(target, relative.Replace('/', Path.DirectorySeparatorChar)));
        var prefix = Path.EndsInDirectorySeparator(target) ? target : target + Path.DirectorySeparatorChar;
        if (!full.StartsWith(prefix, StringComparison.Ordinal))
            throw new InvalidDataException($"Manifest path '{relative}' escapes the restore target.");
        return full;
    }
}
