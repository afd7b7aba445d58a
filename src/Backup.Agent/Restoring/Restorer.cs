using System.Security.Cryptography;
using Backup.Agent.FileSystem;
using Backup.Agent.Memory;
using Backup.Storage.Blobs;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.Restoring;

/// <summary><see cref="Failed"/>: items the target would not take (name, permission, space), each with the reason; the rest was restored.</summary>
public sealed record RestoreResult(int Files, long Bytes, int SkippedExisting = 0, IReadOnlyList<FailedItem>? Failed = null);

/// <summary>
/// Which items to restore (null = all; a directory brings everything under it) and what to do with items already there.
/// <see cref="OtherCopy"/>: where another copy of a pack can be read when the one read first proves damaged (a restore from the
/// server's disk reads the vault's copy); null: a damaged pack fails the restore.
/// </summary>
public sealed record RestoreOptions(IReadOnlyList<string>? Paths = null, ExistingItems IfExists = ExistingItems.Overwrite, Restorer.FetchPack? OtherCopy = null)
{
    public static readonly RestoreOptions Everything = new();
}

/// <summary>
/// Rebuilds a recovery point, or selected items of it, under a target folder. The tree is read first (its chunks,
/// like all others, decrypted and checked against their ids); then every pack holding a needed chunk is fetched
/// once into scratch space, checked against its id (its SHA-256), and each of its needed chunks is opened, verified
/// and written at every place it occurs. Files are built in a staging folder in the target (<c>.restoring-…</c>, on the
/// target's file system so the final rename moves no data) under short names, so a name as long as the file system allows
/// still fits; pre-sized and sparse (an all-zero chunk is not written), they are renamed into place only when every byte has
/// been verified. The staging folder goes whatever happens, so no unverified file is ever left in the user's folder.
/// An item the target will not take (its name, a permission, a full disk or quota, something in the way) does not fail the
/// others: it is left out and listed with the reason. Damaged or missing data still fails the whole restore.
/// </summary>
public sealed class Restorer(ILogger log)
{
    public delegate Task FetchPack(string packId, Stream destination, CancellationToken ct);

    /// <summary>Where <see cref="Length"/> bytes of a chunk, from <see cref="From"/>, go: a chunk that spans a hole goes in two.</summary>
    private readonly record struct Target(int File, long Offset, int From, int Length);

    /// <summary>
    /// Where a blob lies in its pack, and where its chunk lies in the blob's plaintext (at 0 and all of it, unless the blob is a
    /// group of small chunks): what the restore needs of an index entry.
    /// </summary>
    private readonly record struct BlobSpan(long Offset, int Length, int PlainLength, int PlainOffset)
    {
        public static BlobSpan Of(ChunkLocation location) => new(location.Offset, location.Length, location.PlainLength, location.PlainOffset);
    }

    /// <summary>
    /// A chunk one pack holds for this restore: where it lies, and where each copy of it goes. The span is copied out of the
    /// index entry, so the index (its id and pack id strings, megabytes) is garbage once the plan is made.
    /// </summary>
    private sealed record Need(BlobSpan Location, List<Target> Targets);

    /// <summary>A file being restored; its data goes to <see cref="Tmp"/> (made when needed, not kept: 22,000 paths are megabytes).</summary>
    private sealed record RestoredFile(TreeEntry Entry, string Path, string Staging, int Number)
    {
        public string Tmp => System.IO.Path.Join(Staging, Number.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The staging folders' names start so; one left by an agent that was killed is removed by the next restore into the target.</summary>
    private const string StagingPrefix = ".restoring-";

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdef");

    /// <summary>What keeps one item from being written, as opposed to damaged data or a lost connection, which fail the restore.</summary>
    private static bool ItemProblem(Exception e) => e is IOException or UnauthorizedAccessException && e is not System.Net.Http.HttpIOException;

    public async Task<RestoreResult> RestoreAsync(
        Manifest manifest, IReadOnlyDictionary<ChunkId, ChunkLocation> index, MasterKeys keys, string targetRoot, string scratch,
        FetchPack fetch, RestoreOptions options, CancellationToken ct)
    {
        var problems = manifest.Validate();
        if (problems.Count > 0) throw new InvalidDataException("The manifest is damaged: " + string.Join(" ", problems));
        // Chunk and blob buffers for every worker, kept between chunks up to a bound and freed when the restore ends.
        using var pool = new NativeBufferPool(KeptBufferBytes);
        var envelopes = new System.Collections.Concurrent.ConcurrentBag<BlobEnvelope>();
        try
        {
            // The index is let go once the plan holds what it needs from it (a chunk id and a location per chunk: megabytes).
            var handedOver = index;
            index = null!;
            return await RestoreAsync(manifest, handedOver, keys, targetRoot, scratch, fetch, options, pool, envelopes, ct);
        }
        finally
        {
            foreach (var envelope in envelopes) envelope.Dispose();
        }
    }

    // Bytes of free buffers kept for reuse: a sealed blob and its chunk per worker at the usual chunk sizes.
    private const long KeptBufferBytes = 6 << 20;

    private async Task<RestoreResult> RestoreAsync(
        Manifest manifest, IReadOnlyDictionary<ChunkId, ChunkLocation> index, MasterKeys keys, string targetRoot, string scratch,
        FetchPack fetch, RestoreOptions options, NativeBufferPool pool, System.Collections.Concurrent.ConcurrentBag<BlobEnvelope> envelopes, CancellationToken ct)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var envelope = new BlobEnvelope(keys);
        envelopes.Add(envelope);
        var tree = await ReadTreeAsync(manifest, index, envelope, pool, scratch, fetch, options.OtherCopy, ct);
        var treeTime = clock.Elapsed;
        var entries = Select(tree.Entries, options.Paths);

        var target = Path.GetFullPath(targetRoot);
        Directory.CreateDirectory(target);
        RemoveStaleStaging(target);
        var staging = Directory.CreateDirectory(Path.Join(target, StagingPrefix + Guid.NewGuid().ToString("N")[..12])).FullName;
        var failures = new System.Collections.Concurrent.ConcurrentQueue<FailedItem>();
        void Failed(string item, Exception e) => failures.Enqueue(new FailedItem(item, e.Message));
        var written = new List<(TreeEntry Entry, string Path)>();
        var files = new List<RestoredFile>();
        var needs = new Dictionary<string, Dictionary<ChunkId, Need>>(StringComparer.Ordinal);
        var made = new HashSet<string>(StringComparer.Ordinal);
        // Hard links: the first selected name of each group is restored as a file, the others are linked to it afterwards.
        var leaders = new Dictionary<int, int>();
        var links = new List<(TreeEntry Entry, string Path, int Leader)>();
        int skipped = 0;
        TimeSpan planTime = default, packTime = default;
        try
        {
            // Remembered only once made: a folder that could not be made is tried again (and reported) for each item in it.
            void Folder(string path)
            {
                if (made.Contains(path)) return;
                Posix.CreateDirectories(path);
                made.Add(path);
            }

            foreach (var entry in entries)
            {
                ct.ThrowIfCancellationRequested();
                YoungGarbage.Collect();
                var path = TargetPath(target, entry.Path);
                try
                {
                    if (entry.Kind != EntryKind.Directory && Occupied(path))
                    {
                        if (options.IfExists == ExistingItems.Skip)
                        {
                            skipped++;
                            continue;
                        }
                        if (options.IfExists == ExistingItems.KeepBoth) path = FreeName(path);
                    }
                    switch (entry.Kind)
                    {
                        case EntryKind.Directory:
                            Folder(path);
                            written.Add((entry, path));
                            break;
                        case EntryKind.Symlink or EntryKind.Fifo or EntryKind.CharDevice or EntryKind.BlockDevice:
                            Folder(Path.GetDirectoryName(path)!);
                            written.Add((entry, path));
                            break;
                        case EntryKind.File when entry.LinkGroup is { } group && leaders.TryGetValue(group, out var leader):
                            Folder(Path.GetDirectoryName(path)!);
                            links.Add((entry with { Chunks = null }, path, leader));
                            break;
                        case EntryKind.File:
                            Folder(Path.GetDirectoryName(path)!);
                            if (entry.LinkGroup is { } first) leaders[first] = files.Count;
                            // Kept without its chunk list, which the plan now holds.
                            files.Add(new RestoredFile(entry with { Chunks = null }, path, staging, files.Count));
                            Plan(files.Count - 1, entry, index, needs);
                            break;
                    }
                }
                catch (Exception e) when (ItemProblem(e))
                {
                    Failed(entry.Path, e);
                }
            }

            // A file is created, at its full size (sparse), when its first chunk lands (in the pack workers, so creating files
            // overlaps the other worker's decryption rather than being a pass of its own before any download).
            var created = new int[files.Count];
            // Why a file's data could not be written (set once, by the first pack worker that fails to), null while it can.
            var unwritable = new string?[files.Count];
            index = null!;
            YoungGarbage.CollectAll(); // the tree, its JSON and the index are garbage now; the pack workers reuse their memory
            planTime = clock.Elapsed;
            // Packs are independent: one worker per core fetches, verifies, decrypts and writes its pack while the
            // others do theirs (writes go to distinct offsets). Envelopes (zstd contexts, cipher) are handed from one pack to
            // the next; a blob is decrypted in place, so a chunk needs its blob's buffer and, when compressed, one for the chunk.
            var spare = new System.Collections.Concurrent.ConcurrentBag<BlobEnvelope>([envelope]);
            await Parallel.ForEachAsync(needs, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount), CancellationToken = ct },
                async (need, token) =>
                {
                    var (packId, chunks) = need;
                    if (!spare.TryTake(out var worker))
                    {
                        worker = new BlobEnvelope(keys);
                        envelopes.Add(worker);
                    }
                    try
                    {
                        // Each blob is opened, verified and written as soon as it has arrived: no scratch copy of the pack. A blob
                        // holding a group of small chunks is opened once for all of them.
                        var blobs = chunks.Select(c => (Id: c.Key, c.Value.Location, c.Value.Targets)).GroupBy(c => c.Location.Offset)
                            .OrderBy(b => b.Key).Select(b => b.OrderBy(c => c.Location.PlainOffset).ToList()).ToList();
                        // A copy that proves damaged part way is read again whole from the other copy: writing a verified chunk
                        // twice at its offsets writes the same bytes.
                        await FromSoundCopyAsync(packId, fetch, options.OtherCopy, async from =>
                        {
                            await using var pack = new PackReceiver(packId, [.. blobs.Select(b => (b[0].Id, b[0].Location.Offset, b[0].Location.Length))], pool, (i, sealedBlob) =>
                            {
                                var blob = blobs[i];
                                YoungGarbage.Collect();
                                OpenBlob(sealedBlob, packId, [.. blob.Select(c => (c.Id, c.Location))], worker, pool, c => files[blob[c].Targets[0].File].Entry.Path,
                                    (c, chunk) => WriteChunk(chunk, blob[c].Targets, files, created, unwritable));
                            });
                            await from(packId, pack, token);
                            pack.Finish();
                        }, token);
                    }
                    finally
                    {
                        spare.Add(worker);
                    }
                });

            // Files no chunk landed in: empty ones.
            for (var i = 0; i < files.Count; i++)
                if (created[i] == 0 && unwritable[i] is null)
                    try
                    {
                        Create(files[i], created, i).Dispose();
                    }
                    catch (Exception e) when (ItemProblem(e))
                    {
                        unwritable[i] = e.Message;
                    }

            packTime = clock.Elapsed;
            var placed = new bool[files.Count];
            for (var i = 0; i < files.Count; i++)
            {
                var file = files[i];
                if (unwritable[i] is { } reason)
                {
                    failures.Enqueue(new FailedItem(file.Entry.Path, reason));
                    continue;
                }
                try
                {
                    MoveIntoPlace(file.Tmp, file.Path);
                    written.Add((file.Entry, file.Path));
                    placed[i] = true;
                }
                catch (Exception e) when (ItemProblem(e))
                {
                    Failed(file.Entry.Path, e);
                }
            }
            for (var n = 0; n < links.Count; n++)
            {
                var (entry, path, leader) = links[n];
                if (!placed[leader])
                {
                    failures.Enqueue(new FailedItem(entry.Path, $"A hard link of {files[leader].Entry.Path}, which could not be restored."));
                    continue;
                }
                try
                {
                    Link(files[leader].Path, path, Path.Join(staging, "link-" + n.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    written.Add((entry, path));
                }
                catch (Exception e) when (ItemProblem(e))
                {
                    Failed(entry.Path, e);
                }
            }
            files.Clear();
            foreach (var (entry, path) in written.Where(w => w.Entry.Kind is EntryKind.Symlink or EntryKind.Fifo or EntryKind.CharDevice or EntryKind.BlockDevice).ToList())
                try
                {
                    if (Occupied(path)) Posix.Unlink(path);
                    if (entry.Kind == EntryKind.Symlink) Posix.Symlink(entry.LinkTarget!, path);
                    // Device nodes need CAP_MKNOD (root): refused, the node is a failed item with the system's reason.
                    else Posix.Mknod(path, entry.Kind switch { EntryKind.Fifo => 0x1000u, EntryKind.CharDevice => 0x2000u, _ => 0x6000u },
                        entry.Mode, entry.DeviceMajor ?? 0, entry.DeviceMinor ?? 0);
                }
                catch (Exception e) when (ItemProblem(e))
                {
                    Failed(entry.Path, e);
                    written.Remove((entry, path));
                }

            RemoveStaging(staging); // before the target's own mtime is set: removing the folder changes it
            // Metadata last: writing a file changes its directory's mtime, and a read-only directory refuses new files. The
            // restored folder itself gets the protected folder's when the whole point is restored (not when a few items are
            // brought back into a folder that is the user's).
            var folders = written.Where(w => w.Entry.Kind == EntryKind.Directory).OrderByDescending(w => w.Entry.Path.Count(c => c == '/')).ToList();
            if (options.Paths is null && tree.Root is { } root) folders.Add((root, target));
            foreach (var (entry, path) in written.Where(w => w.Entry.Kind != EntryKind.Directory).Concat(folders))
                try
                {
                    ApplyMetadata(entry, path);
                }
                catch (Exception e) when (ItemProblem(e))
                {
                    Failed(entry.Path == "" ? "." : entry.Path, e);
                }
        }
        finally
        {
            // Never leave a half-written or unverified file in the user's folder, whichever way the restore ends.
            if (Directory.Exists(staging)) RemoveStaging(staging);
        }
        var restored = written.Where(w => w.Entry.Kind == EntryKind.File).ToList();
        var bytes = restored.Sum(w => w.Entry.Size);
        var failed = failures.OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        log.LogInformation("Restore: tree {Tree:F2} s, plan {Plan:F2} s, {Packs} packs {PackTime:F2} s, files renamed into place and their modes and mtimes set {Finish:F2} s",
            treeTime.TotalSeconds, (planTime - treeTime).TotalSeconds, needs.Count, (packTime - planTime).TotalSeconds, (clock.Elapsed - packTime).TotalSeconds);
        log.LogInformation("Restored {Files} files, {Bytes} bytes to {Target}; {Skipped} existing items left as they were", restored.Count, bytes, target, skipped);
        foreach (var f in failed.Take(20)) log.LogWarning("Not restored: {Path}: {Reason}", f.Path, f.Reason);
        if (failed.Count > 20) log.LogWarning("{More} more items not restored", failed.Count - 20);
        return new RestoreResult(restored.Count, bytes, skipped, failed);
    }

    private static void WriteChunk(ReadOnlySpan<byte> data, List<Target> targets, List<RestoredFile> files, int[] created, string?[] unwritable)
    {
        var hole = data.IndexOfAnyExcept((byte)0) < 0; // the file, at its full size, already reads as zeros there
        foreach (var group in targets.GroupBy(t => t.File))
        {
            if (Volatile.Read(ref unwritable[group.Key]) is not null) continue;
            try
            {
                using var handle = Create(files[group.Key], created, group.Key);
                if (hole) continue;
                foreach (var t in group) RandomAccess.Write(handle, data.Slice(t.From, t.Length), t.Offset);
            }
            catch (Exception e) when (ItemProblem(e))
            {
                Interlocked.CompareExchange(ref unwritable[group.Key], e.Message, null);
            }
        }
    }

    /// <summary>
    /// Gives <paramref name="existing"/> (restored and verified) the name <paramref name="path"/> too: a new name is linked in place;
    /// one that replaces an item is linked beside the staged files (<paramref name="temporary"/>) and renamed over it, so the old
    /// item is there until the new one is. Where no link can be made (another file system under the target, a file system without
    /// hard links, the inode's link limit) the name gets a copy: the data is right, only the sharing is lost.
    /// </summary>
    private void Link(string existing, string path, string temporary)
    {
        var free = !Occupied(path);
        var at = free ? path : temporary;
        try
        {
            Posix.Link(existing, at);
        }
        catch (IOException e)
        {
            log.LogWarning("Could not link {Path} to {Existing} ({Reason}); it is restored as a copy", path, existing, e.Message);
            File.Copy(existing, at);
        }
        if (!free) MoveIntoPlace(temporary, path);
    }

    /// <summary>
    /// Renames a staged file over its final name. .NET's move (which copies when a mount point lies between) takes names by their
    /// UTF-8 encoding; a name that is not UTF-8 is renamed by its own bytes.
    /// </summary>
    private static void MoveIntoPlace(string staged, string path)
    {
        if (ItemName.IsEscaped(path)) Posix.Rename(staged, path);
        else File.Move(staged, path, overwrite: true);
    }

    /// <summary>Removes what a restore killed before its cleanup (kill -9, power loss) left in the target.</summary>
    private void RemoveStaleStaging(string target)
    {
        try
        {
            // Only names this restorer makes (the prefix and 12 hex digits): a folder of the user's that merely looks alike stays.
            foreach (var stale in Directory.EnumerateDirectories(target, StagingPrefix + "*"))
                if (Path.GetFileName(stale) is { Length: 23 } name && !name.AsSpan(StagingPrefix.Length).ContainsAnyExcept(HexDigits))
                    RemoveStaging(stale);
        }
        catch (Exception e) when (ItemProblem(e))
        {
            log.LogWarning("Could not look for temporary folders left in {Target} by an interrupted restore: {Reason}", target, e.Message);
        }
    }

    /// <summary>Best effort, file by file: one that cannot be removed must not keep the others, nor hide the restore's own outcome.</summary>
    private void RemoveStaging(string staging)
    {
        try
        {
            Directory.Delete(staging, recursive: true);
        }
        catch (Exception e) when (ItemProblem(e))
        {
            try
            {
                foreach (var file in Directory.EnumerateFiles(staging))
                    try
                    {
                        File.Delete(file);
                    }
                    catch (Exception again) when (ItemProblem(again))
                    {
                        log.LogWarning("Could not remove the restore's temporary file {Path}: {Reason}", file, again.Message);
                    }
            }
            catch (Exception again) when (ItemProblem(again))
            {
                // The folder is gone or unreadable: nothing more can be done here.
            }
            if (Directory.Exists(staging)) log.LogWarning("Could not remove the restore's temporary folder {Path}: {Reason}", staging, e.Message);
        }
    }

    /// <summary>
    /// Opens a file's temporary; the first call creates it (emptying any left by an interrupted restore) at its full size. The
    /// first call for a file is made under a lock, so the other pack worker cannot write into it before it is emptied.
    /// </summary>
    private static Microsoft.Win32.SafeHandles.SafeFileHandle Create(RestoredFile file, int[] created, int index)
    {
        if (Volatile.Read(ref created[index]) == 0)
            lock (CreationLocks[index % CreationLocks.Length])
            {
                if (created[index] == 0)
                {
                    var fresh = File.OpenHandle(file.Tmp, FileMode.Create, FileAccess.Write);
                    RandomAccess.SetLength(fresh, file.Entry.Size);
                    Volatile.Write(ref created[index], 1);
                    return fresh;
                }
            }
        return File.OpenHandle(file.Tmp, FileMode.Open, FileAccess.Write);
    }

    private static readonly Lock[] CreationLocks = [.. Enumerable.Range(0, 64).Select(_ => new Lock())];

    /// <summary>
    /// Reads one pack through <paramref name="receive"/> from <paramref name="fetch"/> and, when that copy proves damaged (its
    /// hash, a blob that does not open, a chunk that is not its id) and <paramref name="otherCopy"/> is given, once more from it.
    /// </summary>
    private async Task FromSoundCopyAsync(string packId, FetchPack fetch, FetchPack? otherCopy, Func<FetchPack, Task> receive, CancellationToken ct)
    {
        try
        {
            await receive(fetch);
        }
        catch (Exception damage) when (otherCopy is not null && damage is InvalidDataException or System.Security.Cryptography.CryptographicException
                                       && !ct.IsCancellationRequested)
        {
            log.LogWarning("Pack {PackId} is damaged ({Reason}); reading its other copy", packId, damage.Message);
            try
            {
                await receive(otherCopy);
            }
            catch (Exception again) when (again is not OperationCanceledException)
            {
                throw new InvalidDataException($"{damage.Message} Its other copy could not be used either: {again.Message}", damage);
            }
        }
    }

    /// <summary>Fetches and decrypts the tree; every chunk of it is verified like file data.</summary>
    private async Task<Tree> ReadTreeAsync(
        Manifest manifest, IReadOnlyDictionary<ChunkId, ChunkLocation> index, BlobEnvelope envelope, NativeBufferPool pool, string scratch,
        FetchPack fetch, FetchPack? otherCopy, CancellationToken ct)
    {
        var ids = manifest.Tree.Select(ChunkId.Parse).ToList();
        var locations = ids.Select(id => index.TryGetValue(id, out var l) ? l
            : throw new InvalidDataException($"Chunk {id} of the recovery point's tree is in no pack the server knows.")).ToList();
        var packs = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            // The tree's JSON goes through a scratch file: it grows with the number of items, and a growing memory stream of it
            // would be garbage as soon as the tree is read.
            await using var bytes = new FileStream(Path.Combine(scratch, $"tree-{Guid.NewGuid():N}.json"), FileMode.CreateNew,
                FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
            for (var i = 0; i < ids.Count; i++)
            {
                var location = locations[i];
                if (!packs.TryGetValue(location.PackId, out var file))
                {
                    string? verified = null;
                    await FromSoundCopyAsync(location.PackId, fetch, otherCopy, async from => verified = await FetchVerifiedAsync(location.PackId, scratch, from, ct), ct);
                    packs[location.PackId] = file = verified!;
                }
                await using var pack = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1);
                OpenChunk(pack, location.PackId, ids[i], BlobSpan.Of(location), envelope, pool, _ => "the tree", (_, chunk) => bytes.Write(chunk));
            }
            bytes.Position = 0;
            var tree = Tree.ReadFrom(bytes);
            var problems = tree.Validate();
            if (problems.Count > 0) throw new InvalidDataException("The recovery point's tree is damaged: " + string.Join(" ", problems.Take(5)));
            return tree;
        }
        finally
        {
            foreach (var file in packs.Values) File.Delete(file);
        }
    }

    private static void Plan(int file, TreeEntry entry, IReadOnlyDictionary<ChunkId, ChunkLocation> index, Dictionary<string, Dictionary<ChunkId, Need>> needs)
    {
        long offset = 0;
        long position = 0; // in the file: the chunks' bytes go around its holes
        var holes = entry.Holes ?? [];
        var hole = 0;
        foreach (var hex in entry.Chunks ?? [])
        {
            var id = ChunkId.Parse(hex);
            if (!index.TryGetValue(id, out var location))
                throw new InvalidDataException($"{entry.Path}: chunk {id} is in no pack the server knows.");
            if (!needs.TryGetValue(location.PackId, out var chunks)) needs[location.PackId] = chunks = [];
            if (!chunks.TryGetValue(id, out var need)) chunks[id] = need = new Need(BlobSpan.Of(location), []);
            for (var from = 0; from < location.PlainLength;)
            {
                for (; hole < holes.Count && holes[hole].Offset <= position; hole++) position = Math.Max(position, holes[hole].Offset + holes[hole].Length);
                var length = (int)Math.Min(location.PlainLength - from, hole < holes.Count ? holes[hole].Offset - position : long.MaxValue);
                need.Targets.Add(new Target(file, position, from, length));
                position += length;
                from += length;
            }
            offset += location.PlainLength;
        }
        if (offset != entry.DataSize)
            throw new InvalidDataException($"{entry.Path}: its chunks add up to {offset} bytes, but the tree says {entry.DataSize}.");
    }

    /// <summary>What to do with the chunk at position <paramref name="index"/> of the blob's wanted chunks (valid only during the call).</summary>
    private delegate void ChunkAction(int index, ReadOnlySpan<byte> chunk);

    /// <summary>
    /// Reads one blob from a verified pack file (the tree's, fetched whole before the plan exists) and opens it
    /// (<see cref="OpenBlob"/>).
    /// </summary>
    private static void OpenChunk(
        FileStream pack, string packId, ChunkId id, BlobSpan location, BlobEnvelope envelope, NativeBufferPool pool, Func<int, string> item, ChunkAction use)
    {
        if (location.Offset < 0 || location.Offset + location.Length > pack.Length)
            throw new InvalidDataException($"Pack {packId} is shorter than the index says: chunk {id} (needed by {item(0)}) lies past its end.");
        if (location.Length < 0 || location.Length > Pack.MaxBlobLength)
            throw new InvalidDataException($"Chunk {id} in pack {packId} is indexed as {location.Length} bytes, more than any blob.");
        var blob = pool.Rent(location.Length);
        try
        {
            var sealedBlob = blob.Span(location.Length);
            RandomAccess.Read(pack.SafeFileHandle, sealedBlob, location.Offset);
            OpenBlob(sealedBlob, packId, [(id, location)], envelope, pool, item, use);
        }
        finally
        {
            pool.Return(blob);
        }
    }

    /// <summary>
    /// Opens one sealed blob in place and hands each of <paramref name="chunks"/> (all in this blob) to <paramref name="use"/>,
    /// each checked against its id first; any damage is reported with the pack, chunk and item.
    /// </summary>
    private static void OpenBlob(
        Span<byte> sealedBlob, string packId, IReadOnlyList<(ChunkId Id, BlobSpan Location)> chunks, BlobEnvelope envelope, NativeBufferPool pool,
        Func<int, string> item, ChunkAction use)
    {
        NativeBuffer? plain = null;
        var at = 0;
        try
        {
            ReadOnlySpan<byte> content;
            try
            {
                content = envelope.OpenBlobInPlace(sealedBlob, length => (plain = pool.Rent(length)).Span(length), Pack.MaxPlainLength, $"Chunk {chunks[0].Id}");
                for (; at < chunks.Count; at++)
                {
                    var (id, location) = chunks[at];
                    if (location.PlainOffset < 0 || location.PlainLength < 0 || (long)location.PlainOffset + location.PlainLength > content.Length)
                        throw new InvalidDataException(
                            $"Chunk {id} in pack {packId} is indexed at plaintext bytes {location.PlainOffset}+{location.PlainLength}, but its blob holds {content.Length} bytes.");
                    var chunk = content.Slice(location.PlainOffset, location.PlainLength);
                    envelope.Verify(chunk, id);
                    use(at, chunk);
                }
            }
            catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or InvalidDataException && !e.Message.Contains(packId, StringComparison.Ordinal))
            {
                var index = Math.Min(at, chunks.Count - 1);
                throw new InvalidDataException($"Pack {packId}, chunk {chunks[index].Id} (needed by {item(index)}): {e.Message}", e);
            }
        }
        finally
        {
            if (plain is not null) pool.Return(plain);
        }
    }

    /// <summary>The selected items, their contents when they are directories, and their parent directories (for modes and mtimes).</summary>
    public static IReadOnlyList<TreeEntry> Select(IReadOnlyList<TreeEntry> all, IReadOnlyList<string>? paths)
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

    /// <summary>Something is there, a dangling symlink too (lstat, by the name's own bytes).</summary>
    private static bool Occupied(string path) => Posix.Exists(path);

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

    private static async Task<string> FetchVerifiedAsync(string packId, string scratch, FetchPack fetch, CancellationToken ct)
    {
        var file = Path.Combine(scratch, $"restore-{packId}-{Guid.NewGuid():N}");
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
        return file;
    }

    private static void ApplyMetadata(TreeEntry entry, string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            // Linux has no mode for a symlink (chmod follows it). Mode 0 is a real mode (a file locked from everyone), not
            // "unknown": skipping it left such a file world-readable. The mtime is the item's own, a symlink's too.
            if (entry.Kind != EntryKind.Symlink) Posix.Chmod(path, entry.Mode);
            Posix.SetMtime(path, entry.MtimeUtcTicks);
            return;
        }
        if (entry.Kind == EntryKind.Symlink) return;
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
            throw new InvalidDataException($"Tree path '{relative}' escapes the restore target.");
        return full;
    }
}
