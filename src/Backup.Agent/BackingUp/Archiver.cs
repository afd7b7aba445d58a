using Backup.Storage.Chunking;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.BackingUp;

/// <summary>What a run produced: the tree, the chunks holding it, every chunk it references, and its totals.</summary>
/// <param name="BytesRead">Size of all files in the recovery point.</param>
/// <param name="BytesScanned">Bytes actually read from disk (files the metadata cache could not vouch for).</param>
public sealed record ArchiveResult(
    Tree Tree, IReadOnlyList<ChunkId> TreeChunks, IReadOnlyCollection<ChunkId> Referenced,
    int Files, int Directories, long BytesRead, long BytesScanned, int FilesFromCache, PipelineTotals Pipeline);

/// <summary>
/// Walks a protected folder (without following symlinks), cuts every regular file into FastCDC chunks and hands
/// them to the <see cref="ChunkPipeline"/>, which stores only the chunks the server lacks. A file the metadata
/// cache vouches for is not read at all. Items it cannot back up are recorded as skipped, with the reason, and
/// the run goes on. Finally the tree itself is chunked into the same pipeline.
/// </summary>
public sealed class Archiver(ILogger log)
{
    private readonly FastCdcChunker _chunker = new();

    public async Task<ArchiveResult> ArchiveAsync(
        string sourceRoot, ChunkPipeline pipeline, ISet<ChunkId> known, MetadataCache? cache,
        Action<long, int> progress, CancellationToken ct)
    {
        var root = new DirectoryInfo(sourceRoot);
        if (!root.Exists) throw new DirectoryNotFoundException($"The protected folder {sourceRoot} does not exist.");

        var entries = new List<TreeEntry>();
        var skipped = new List<SkippedItem>();
        var referenced = new HashSet<ChunkId>();
        int files = 0, directories = 0, fromCache = 0;
        long bytes = 0, scanned = 0;

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
                Skip(relative == "" ? "." : relative, e.Message);
                continue;
            }
            Array.Sort(children, (a, b) => string.CompareOrdinal(a.Name, b.Name));
            var subdirectories = new List<(DirectoryInfo, string)>();
            foreach (var child in children)
            {
                var path = relative == "" ? child.Name : $"{relative}/{child.Name}";
                if (child.Name.Contains('\uFFFD'))
                {
                    // .NET decodes file names as UTF-8; bytes that are not UTF-8 come back as U+FFFD and the name no longer opens.
                    Skip(path, "The name is not valid UTF-8, so it cannot be read or recorded faithfully.");
                    continue;
                }
                var mode = OperatingSystem.IsWindows() ? 0 : (int)child.UnixFileMode;
                var mtime = child.LastWriteTimeUtc.Ticks;
                if (child.LinkTarget is { } target)
                {
                    entries.Add(new TreeEntry(path, EntryKind.Symlink, 0, mode, mtime, LinkTarget: target));
                }
                else if (child is DirectoryInfo sub)
                {
                    entries.Add(new TreeEntry(path, EntryKind.Directory, 0, mode, mtime));
                    directories++;
                    subdirectories.Add((sub, path));
                }
                else if (child is FileInfo file)
                {
                    var status = UnixFileType.Status(file.FullName);
                    if (status is null)
                    {
                        Skip(path, "The file vanished before it could be read.");
                        continue;
                    }
                    if (status.Value.Kind != UnixFileType.Kind.Regular)
                    {
                        Skip(path, "Not a regular file, directory or symlink (fifo, socket or device).");
                        continue;
                    }
                    var reusable = cache?.Reusable(path, status.Value, known);
                    if (reusable is not null)
                    {
                        fromCache++;
                        Add(path, mode, mtime, status.Value, reusable, status.Value.Size);
                        continue;
                    }
                    try
                    {
                        var (chunks, length) = await ReadAsync(file.FullName, pipeline, ct);
                        scanned += length;
                        var after = UnixFileType.Status(file.FullName);
                        if (after is null) { Skip(path, "The file vanished while it was being read."); continue; }
                        if (after.Value.Size != length || after.Value.MtimeNs != status.Value.MtimeNs || after.Value.CtimeNs != status.Value.CtimeNs)
                        {
                            Skip(path, "The file changed while it was being read; it is left for the next run.");
                            continue;
                        }
                        Add(path, mode, mtime, status.Value, chunks, length);
                    }
                    catch (Exception e) when (e is UnauthorizedAccessException or IOException)
                    {
                        Skip(path, e is FileNotFoundException or DirectoryNotFoundException ? "The file vanished before it could be read." : e.Message);
                    }
                }
                else
                {
                    Skip(path, "Not a regular file, directory or symlink (fifo, socket or device).");
                }
            }
            for (var i = subdirectories.Count - 1; i >= 0; i--) stack.Push(subdirectories[i]);
        }

        var tree = new Tree(Tree.CurrentVersion, root.FullName, entries, skipped);
        var treeChunks = new List<ChunkId>();
        using (var treeBytes = new MemoryStream(tree.ToBytes(), writable: false))
        {
            foreach (var chunk in _chunker.Chunks(treeBytes))
            {
                var id = await pipeline.AddAsync(chunk.Data);
                treeChunks.Add(id);
                referenced.Add(id);
            }
        }
        var totals = await pipeline.CompleteAsync();
        return new ArchiveResult(tree, treeChunks, referenced, files, directories, bytes, scanned, fromCache, totals);

        void Skip(string path, string reason)
        {
            skipped.Add(new SkippedItem(path, reason));
            log.LogWarning("Skipped {Path}: {Reason}", path, reason);
        }

        void Add(string path, int mode, long mtime, UnixStatus status, ChunkId[] chunks, long length)
        {
            entries.Add(new TreeEntry(path, EntryKind.File, length, mode, mtime, Chunks: chunks.Length == 0 ? null : chunks.Select(c => c.ToString()).ToArray()));
            referenced.UnionWith(chunks);
            cache?.Record(path, status, chunks);
            files++;
            bytes += length;
            progress(bytes, files);
        }
    }

    private async Task<(ChunkId[] Chunks, long Length)> ReadAsync(string path, ChunkPipeline pipeline, CancellationToken ct)
    {
        await using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
        var chunks = new List<ChunkId>();
        long length = 0;
        await foreach (var chunk in _chunker.ChunksAsync(input, ct))
        {
            chunks.Add(await pipeline.AddAsync(chunk.Data));
            length += chunk.Length;
        }
        return ([.. chunks], length);
    }
}
