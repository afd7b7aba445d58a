using Backup.Storage.Format;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.BackingUp;

public sealed record ArchiveResult(Manifest Manifest, int Files, int Directories, long BytesRead, int Packs);

/// <summary>
/// Walks a protected folder (without following symlinks), streams every regular file into packs and
/// builds the manifest. Items it cannot read are recorded as skipped; the run goes on.
/// </summary>
public sealed class Archiver(ILogger log)
{
    private sealed record PendingEntry(ManifestEntry Entry, IReadOnlyList<ProvisionalSegment> Segments);

    public async Task<ArchiveResult> ArchiveAsync(
        Guid recoveryPointId, string sourceRoot, PackWriter packs, Action<long, int> progress, CancellationToken ct)
    {
        var root = new DirectoryInfo(sourceRoot);
        if (!root.Exists) throw new DirectoryNotFoundException($"The protected folder {sourceRoot} does not exist.");

        var pending = new List<PendingEntry>();
        var skipped = new List<SkippedItem>();
        int files = 0, directories = 0;
        long bytes = 0;

        var stack = new Stack<(DirectoryInfo Dir, string Relative)>();
        stack.Push((root, ""));
        while (stack.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            var (dir, relative) = stack.Pop();
            FileSystemInfo[] children;
            try
            {
                children = dir.GetFileSystemInfos();
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                skipped.Add(new SkippedItem(relative == "" ? "." : relative, e.Message));
                log.LogWarning("Skipped directory {Path}: {Reason}", dir.FullName, e.Message);
                continue;
            }
            Array.Sort(children, (a, b) => string.CompareOrdinal(a.Name, b.Name));
            var subdirectories = new List<(DirectoryInfo, string)>();
            foreach (var child in children)
            {
                var path = relative == "" ? child.Name : $"{relative}/{child.Name}";
                var mode = OperatingSystem.IsWindows() ? 0 : (int)child.UnixFileMode;
                var mtime = child.LastWriteTimeUtc.Ticks;
                if (child.LinkTarget is { } target)
                {
                    pending.Add(new PendingEntry(new ManifestEntry(path, EntryKind.Symlink, 0, mode, mtime, LinkTarget: target), []));
                }
                else if (child is DirectoryInfo sub)
                {
                    pending.Add(new PendingEntry(new ManifestEntry(path, EntryKind.Directory, 0, mode, mtime), []));
                    directories++;
                    subdirectories.Add((sub, path));
                }
                else if (child is FileInfo file && IsRegularFile(file))
                {
                    try
                    {
                        await using var input = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan | FileOptions.Asynchronous);
                        var (segments, sha, length) = await packs.AddAsync(input, ct);
                        pending.Add(new PendingEntry(new ManifestEntry(path, EntryKind.File, length, mode, mtime, sha), segments));
                        files++;
                        bytes += length;
                        progress(bytes, files);
                    }
                    catch (Exception e) when (e is UnauthorizedAccessException or IOException)
                    {
                        skipped.Add(new SkippedItem(path, e.Message));
                        log.LogWarning("Skipped file {Path}: {Reason}", file.FullName, e.Message);
                    }
                }
                else
                {
                    skipped.Add(new SkippedItem(path, "Not a regular file, directory or symlink (fifo, socket or device)."));
                }
            }
            for (var i = subdirectories.Count - 1; i >= 0; i--) stack.Push(subdirectories[i]);
        }

        await packs.FlushAsync(ct);
        var entries = pending
            .Select(p => p.Entry.Kind == EntryKind.File ? p.Entry with { Segments = p.Segments.Select(packs.Resolve).ToList() } : p.Entry)
            .ToList();
        var manifest = new Manifest(Manifest.CurrentVersion, recoveryPointId, root.FullName, entries, skipped);
        return new ArchiveResult(manifest, files, directories, bytes, packs.PacksWritten);
    }

    private static bool IsRegularFile(FileInfo file) =>
        OperatingSystem.IsWindows() || UnixFileType.Of(file.FullName) == UnixFileType.Kind.Regular;
}
