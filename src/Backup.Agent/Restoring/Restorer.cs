using System.Security.Cryptography;
using Backup.Storage.Format;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.Restoring;

public sealed record RestoreResult(int Files, long Bytes);

/// <summary>
/// Rebuilds a recovery point under a target folder. Each pack is fetched once into scratch space, checked
/// against its id (its SHA-256), used for every file that needs it and deleted after its last use; every
/// restored file is checked against the SHA-256 in the manifest before it counts as restored.
/// </summary>
public sealed class Restorer(ILogger log)
{
    public delegate Task FetchPack(string packId, Stream destination, CancellationToken ct);

    public async Task<RestoreResult> RestoreAsync(Manifest manifest, string targetRoot, string scratch, FetchPack fetch, CancellationToken ct)
    {
        var problems = manifest.Validate();
        if (problems.Count > 0) throw new InvalidDataException("The manifest is damaged: " + string.Join(" ", problems));

        var target = Path.GetFullPath(targetRoot);
        Directory.CreateDirectory(target);
        var lastUse = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < manifest.Entries.Count; i++)
            foreach (var s in manifest.Entries[i].Segments ?? []) lastUse[s.PackId] = i;

        var cached = new Dictionary<string, string>(StringComparer.Ordinal);
        int files = 0;
        long bytes = 0;
        try
        {
            for (var i = 0; i < manifest.Entries.Count; i++)
            {
                ct.ThrowIfCancellationRequested();
                var entry = manifest.Entries[i];
                var path = TargetPath(target, entry.Path);
                switch (entry.Kind)
                {
                    case EntryKind.Directory:
                        Directory.CreateDirectory(path);
                        break;
                    case EntryKind.Symlink:
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        if (File.Exists(path) || Directory.Exists(path)) File.Delete(path);
                        File.CreateSymbolicLink(path, entry.LinkTarget!);
                        break;
                    case EntryKind.File:
                        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                        await RestoreFileAsync(entry, path, scratch, cached, fetch, ct);
                        files++;
                        bytes += entry.Size;
                        break;
                }
                foreach (var packId in (entry.Segments ?? []).Select(s => s.PackId).Distinct())
                {
                    if (lastUse[packId] == i && cached.Remove(packId, out var done)) File.Delete(done);
                }
            }

            // Metadata last: writing a file changes its directory's mtime, and a read-only directory refuses new files.
            foreach (var entry in manifest.Entries.Where(e => e.Kind != EntryKind.Directory)) ApplyMetadata(entry, TargetPath(target, entry.Path));
            foreach (var entry in manifest.Entries.Where(e => e.Kind == EntryKind.Directory).OrderByDescending(e => e.Path.Count(c => c == '/')))
                ApplyMetadata(entry, TargetPath(target, entry.Path));
        }
        finally
        {
            foreach (var file in cached.Values) File.Delete(file);
        }
        log.LogInformation("Restored {Files} files, {Bytes} bytes to {Target}", files, bytes, target);
        return new RestoreResult(files, bytes);
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
