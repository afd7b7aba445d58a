using Backup.Agent.FileSystem;
using Backup.Agent.Memory;
using Backup.Storage.Chunking;
using Backup.Storage.Crypto;
using Backup.Storage.Filtering;
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
/// Walks a protected folder (without following symlinks), records folders, symlinks, fifos and device nodes, cuts every
/// regular file into FastCDC chunks and hands them to the <see cref="ChunkPipeline"/>, which stores only the chunks the server lacks. A file the metadata
/// cache vouches for is not read at all. Items it cannot back up are recorded as skipped, with the reason, and
/// the run goes on. Finally the tree itself is chunked into the same pipeline.
/// <para>The data source's <see cref="PathFilter"/> decides what is in scope: an excluded item is not recorded at all (it is
/// not "skipped", it is not part of the data source) and an excluded folder is not entered. With include patterns, a
/// folder is entered only when something in it could be included, and kept in the tree only when it is included itself
/// or holds something that is.</para>
/// </summary>
public sealed class Archiver(ILogger log)
{
    // Reads 1 MiB at a time ahead of the cut (9 MiB of buffer, not 16): the peak memory of a run, not its speed, decides.
    private readonly FastCdcChunker _chunker = new(readSize: 1 << 20);

    public async Task<ArchiveResult> ArchiveAsync(
        string sourceRoot, ChunkPipeline pipeline, ISet<ChunkId> known, MetadataCache? cache, PathFilter filter,
        Action<long, int> progress, CancellationToken ct)
    {
        var root = new DirectoryInfo(sourceRoot);
        if (!root.Exists) throw new DirectoryNotFoundException($"The protected folder {sourceRoot} does not exist.");

        var entries = new List<TreeEntry>();
        var skipped = new List<SkippedItem>();
        var referenced = new HashSet<ChunkId>();
        int files = 0, directories = 0, fromCache = 0;
        long bytes = 0, scanned = 0;

        // Files with more than one name, by file system and inode: the group each is in (its number in the tree) and what the
        // first name read held, so the other names are recorded without reading the same data again.
        var linkGroups = new Dictionary<(ulong Device, ulong Inode), (int Group, ChunkId[] Chunks, long Length, List<FileHole>? Holes)>();
        var groupSizes = new List<int>();
        // Folders matched by an include pattern: everything in them is included.
        var includedDirectories = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<(string Dir, string Relative, bool Included)>();
        stack.Push((root.FullName, "", !filter.HasIncludes));
        while (stack.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            YoungGarbage.Collect();
            var (dir, relative, dirIncluded) = stack.Pop();
            List<(string Name, bool ListedAsDirectory)> children;
            try
            {
                // Names only: one lstat(2) per item below gives everything the tree needs (.NET's file infos cost an lstat and
                // two readlink calls per item, and this walk one more lstat for the inode and ctime). readdir(3) itself rather
                // than .NET's listing, which decodes names as UTF-8 and turns bytes that are not into U+FFFD: a name that is not
                // UTF-8 comes back escaped (ItemName), and every call below hands the kernel its exact bytes again.
                children = Posix.List(dir);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                Skip(relative == "" ? "." : relative, e.Message);
                continue;
            }
            children.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            var subdirectories = new List<(string, string, bool)>();
            foreach (var (name, listedAsDirectory) in children)
            {
                var path = relative == "" ? name : $"{relative}/{name}";
                var full = Path.Join(dir, name);
                var status = UnixFileType.Status(full);
                var isDirectory = status is { } listed ? listed.Kind == UnixFileType.Kind.Directory : listedAsDirectory;
                if (filter.IsExcluded(path, isDirectory)) continue;
                var included = dirIncluded || filter.Includes(path, isDirectory);
                if (isDirectory ? !included && !filter.MayIncludeBelow(path) : !included) continue;
                if (included && isDirectory && filter.HasIncludes) includedDirectories.Add(path);
                if (status is not { } stat)
                {
                    Skip(path, VanishedBeforeRead);
                    continue;
                }
                var mode = OperatingSystem.IsWindows() ? 0 : stat.Mode;
                var mtime = stat.MtimeTicks;
                switch (stat.Kind)
                {
                    case UnixFileType.Kind.Symlink:
                        if (LinkTarget(full) is { } target) entries.Add(new TreeEntry(path, EntryKind.Symlink, 0, mode, mtime, LinkTarget: target));
                        else Skip(path, VanishedBeforeRead);
                        break;
                    case UnixFileType.Kind.Directory:
                        entries.Add(new TreeEntry(path, EntryKind.Directory, 0, mode, mtime));
                        subdirectories.Add((full, path, included));
                        break;
                    case UnixFileType.Kind.Regular when stat.Links > 1 && linkGroups.TryGetValue((stat.Device, stat.Inode), out var linked):
                        groupSizes[linked.Group]++;
                        Add(path, mode, mtime, stat, linked.Chunks, linked.Length, linked.Holes, linked.Group);
                        break;
                    case UnixFileType.Kind.Regular:
                        await FileAsync(full, path, mode, mtime, stat);
                        break;
                    case UnixFileType.Kind.Fifo:
                        entries.Add(new TreeEntry(path, EntryKind.Fifo, 0, mode, mtime));
                        break;
                    case UnixFileType.Kind.CharDevice or UnixFileType.Kind.BlockDevice:
                        var (major, minor) = Posix.SplitDevice(stat.Rdev);
                        entries.Add(new TreeEntry(path, stat.Kind == UnixFileType.Kind.CharDevice ? EntryKind.CharDevice : EntryKind.BlockDevice, 0, mode, mtime,
                            DeviceMajor: major, DeviceMinor: minor));
                        break;
                    case UnixFileType.Kind.Socket:
                        // As tar and restic do: a socket exists only while its program listens on it, which makes it anew.
                        Skip(path, "A socket: the program that listens on it makes it anew, so it is not backed up.");
                        break;
                    default:
                        Skip(path, "Not a file type the agent knows (not a file, folder, symlink, fifo, device node or socket).");
                        break;
                }
            }
            for (var i = subdirectories.Count - 1; i >= 0; i--) stack.Push(subdirectories[i]);
        }

        if (filter.HasIncludes) entries = WithoutFoldersOutOfScope(entries, includedDirectories, skipped);
        // A file whose other names are outside the protected folder (or out of scope) is a plain file here.
        if (groupSizes.Contains(1))
            entries = entries.Select(e => e.LinkGroup is { } g && groupSizes[g] == 1 ? e with { LinkGroup = null } : e).ToList();
        directories = entries.Count(e => e.Kind == EntryKind.Directory);
        // The folder's own metadata, read last: walking it does not change its mtime, and a restore puts it back.
        var rootEntry = UnixFileType.Status(root.FullName) is { } rootStatus
            ? new TreeEntry("", EntryKind.Directory, 0, OperatingSystem.IsWindows() ? 0 : rootStatus.Mode, rootStatus.MtimeTicks)
            : null;
        var tree = new Tree(Tree.CurrentVersion, root.FullName, entries, skipped, rootEntry);
        var treeChunks = new List<ChunkId>();
        // The tree's JSON goes through a scratch file rather than memory: it grows with the number of items (hundreds of
        // bytes each), and a byte array of it, plus the serializer's growing buffers, would all be garbage a moment later.
        await using (var treeBytes = new FileStream(Path.Combine(pipeline.Scratch, $"tree-{Guid.NewGuid():N}.json"), FileMode.CreateNew,
                         FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose))
        {
            tree.WriteTo(treeBytes);
            treeBytes.Position = 0;
            foreach (var chunk in _chunker.Chunks(treeBytes))
            {
                var id = await pipeline.AddAsync(chunk.Data);
                treeChunks.Add(id);
                referenced.Add(id);
            }
        }
        var totals = await pipeline.CompleteAsync();
        return new ArchiveResult(tree, treeChunks, referenced, files, directories, bytes, scanned, fromCache, totals);

        async Task FileAsync(string full, string path, int mode, long mtime, UnixStatus status)
        {
            var reusable = cache?.Reusable(path, status, known);
            if (reusable is not null)
            {
                fromCache++;
                Add(path, mode, mtime, status, reusable, status.Size, null);
                return;
            }
            try
            {
                var (chunks, data, holes) = await ReadAsync(full, status, pipeline, ct);
                scanned += data;
                var length = data + (holes?.Sum(h => h.Length) ?? 0);
                var after = UnixFileType.Status(full);
                if (after is null)
                {
                    Skip(path, "The file vanished while it was being read.");
                    return;
                }
                if (after.Value.Size != length || after.Value.MtimeNs != status.MtimeNs || after.Value.CtimeNs != status.CtimeNs)
                {
                    Skip(path, "The file changed while it was being read; it is left for the next run.");
                    return;
                }
                Add(path, mode, mtime, status, chunks, length, holes);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                Skip(path, e is FileNotFoundException or DirectoryNotFoundException ? VanishedBeforeRead : e.Message);
            }
        }

        void Skip(string path, string reason)
        {
            skipped.Add(new SkippedItem(path, reason));
            log.LogWarning("Skipped {Path}: {Reason}", path, reason);
        }

        void Add(string path, int mode, long mtime, UnixStatus status, ChunkId[] chunks, long length, List<FileHole>? holes, int? group = null)
        {
            if (group is null && status.Links > 1)
            {
                group = groupSizes.Count;
                groupSizes.Add(1);
                linkGroups[(status.Device, status.Inode)] = (group.Value, chunks, length, holes);
            }
            entries.Add(new TreeEntry(path, EntryKind.File, length, mode, mtime, Chunks: chunks.Length == 0 ? null : chunks.Select(c => c.ToString()).ToArray(),
                LinkGroup: group, Holes: holes));
            referenced.UnionWith(chunks);
            // The cache keeps chunks, not holes: a file with holes is not recorded, so it is read again (its data only, which costs
            // little); a file the cache holds had none when it was read.
            if (holes is null) cache?.Record(path, status, chunks);
            files++;
            bytes += length;
            progress(bytes, files);
        }
    }

    private const string VanishedBeforeRead = "The file vanished before it could be read.";

    /// <summary>A symlink's target (escaped like names: it is bytes too), or null when the link is gone.</summary>
    private static string? LinkTarget(string path)
    {
        try
        {
            return Posix.ReadLink(path);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// With include patterns the walk enters folders that might hold included items; those that turned out to hold none
    /// (and are not included themselves) are dropped, so the recovery point holds just what is in scope and its folders.
    /// </summary>
    private static List<TreeEntry> WithoutFoldersOutOfScope(List<TreeEntry> entries, HashSet<string> includedDirectories, List<SkippedItem> skipped)
    {
        var needed = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in entries.Where(e => e.Kind != EntryKind.Directory).Select(e => e.Path).Concat(includedDirectories).Concat(skipped.Select(s => s.Path)))
            for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
                if (!needed.Add(path[..slash])) break;
        return entries.Where(e => e.Kind != EntryKind.Directory || needed.Contains(e.Path) || includedDirectories.Contains(e.Path)).ToList();
    }

    /// <summary>Files from this size on have their chunk ids computed beside the cut (<see cref="ChunkPipeline.BeginAdd"/>).</summary>
    private const long OverlapFrom = 2 << 20;

    /// <summary>The file's chunks, the bytes they hold, and its holes (null when it has none), which are not read.</summary>
    private async Task<(ChunkId[] Chunks, long Length, List<FileHole>? Holes)> ReadAsync(
        string path, UnixStatus status, ChunkPipeline pipeline, CancellationToken ct)
    {
        // Plain reads on the reader's own thread: for thousands of small files, async reads of a file (a thread-pool hop
        // per read) cost more than the reading; the pipeline's channel still makes the reader wait when sealers lag.
        // .NET opens a name by its UTF-8 encoding: a name that is not UTF-8 is opened by its own bytes.
        using var file = ItemName.IsEscaped(path) ? new FileStream(Posix.OpenRead(path), FileAccess.Read, 1)
            : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, FileOptions.SequentialScan);
        var holes = SparseData.MayHaveHoles(status) ? SparseData.Find(file.SafeFileHandle, status.Size) : null;
        if (holes is { Count: 0 }) holes = null;
        var size = status.Size - (holes?.Sum(h => h.Length) ?? 0);
        using var sparse = holes is null ? null : new SparseData.DataStream(file.SafeFileHandle, status.Size, holes);
        var input = (Stream?)sparse ?? file;
        var (chunks, length) = await ChunkAsync(input, size, pipeline, ct);
        return (chunks, length, holes);
    }

    private async Task<(ChunkId[] Chunks, long Length)> ChunkAsync(Stream input, long size, ChunkPipeline pipeline, CancellationToken ct)
    {
        var chunks = new List<ChunkId>();
        long length = 0;
        if (size < OverlapFrom)
        {
            foreach (var chunk in _chunker.Chunks(input))
            {
                ct.ThrowIfCancellationRequested();
                chunks.Add(await pipeline.AddAsync(chunk.Data));
                length += chunk.Length;
            }
            return ([.. chunks], length);
        }

        // A large file: each chunk's id is computed on another core while this thread cuts the next chunk (the cut and the
        // keyed hash run at about the same speed, ~1.6 and ~1.9 GB/s on one core here, so a file that is mostly known, as
        // after a small change, no longer waits for both in turn).
        ChunkPipeline.PendingChunk? pending = null;
        try
        {
            foreach (var chunk in _chunker.Chunks(input))
            {
                ct.ThrowIfCancellationRequested();
                var previous = pending;
                pending = pipeline.BeginAdd(chunk.Data.Span);
                length += chunk.Length;
                if (previous is not null) chunks.Add(await pipeline.EndAddAsync(previous));
            }
            if (pending is not null)
            {
                var last = pending;
                pending = null;
                chunks.Add(await pipeline.EndAddAsync(last));
            }
        }
        finally
        {
            if (pending is not null) await pipeline.DiscardAsync(pending);
        }
        return ([.. chunks], length);
    }
}
