using System.Diagnostics;
using System.Runtime.Versioning;
using Backup.Agent.BackingUp;
using Backup.Agent.Restoring;
using Backup.Storage.Chunking;
using Backup.Storage.Crypto;
using Backup.Storage.Disk;
using Backup.Storage.Filtering;
using Backup.Storage.Format;
using Backup.UnitTests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Backup.UnitTests.Engine;

/// <summary>One finished backup: what the archiver produced and the manifest the server would keep for it.</summary>
public sealed record BackupRun(ArchiveResult Archive, Manifest Manifest)
{
    public Tree Tree => Archive.Tree;

    public TreeEntry Entry(string path) => Tree.Entries.Single(e => e.Path == path);
}

/// <summary>
/// The agent's engine wired the way the product wires it, minus HTTP: the <see cref="ChunkPipeline"/> uploads packs
/// into a real <see cref="DiskStore"/>, the rig keeps the server's chunk index from what the store read out of each
/// pack's trailer, and restores fetch the packs back from the store. One repository key per rig.
/// </summary>
[UnsupportedOSPlatform("windows")]
internal sealed class BackupRig : IDisposable
{
    private readonly TempDirectory _temp = new();

    public BackupRig()
    {
        Source = _temp.Sub("source");
        BackupScratch = _temp.Sub("backup-scratch");
        RestoreScratch = _temp.Sub("restore-scratch");
        StateDirectory = _temp.Sub("state");
        Store = new DiskStore(_temp.Sub("store"));
    }

    public MasterKeys Keys { get; } = MasterKeys.Generate();
    public string Source { get; }
    public string BackupScratch { get; }
    public string RestoreScratch { get; }
    public string StateDirectory { get; }
    public DiskStore Store { get; }

    /// <summary>The data source's include/exclude patterns the archiver honours (everything by default).</summary>
    public PathFilter Filter { get; set; } = PathFilter.Everything;

    /// <summary>The server's chunk index: the first pack stored with a chunk is where it is read from, as on the server.</summary>
    public Dictionary<ChunkId, ChunkLocation> Index { get; } = [];

    public string CachePath => MetadataCache.PathFor(StateDirectory, Source);

    public string NewTarget(string name = "target") => Path.Combine(_temp.Path, name);

    public string[] StoredPacks() =>
        Directory.GetFiles(Path.Combine(Store.Root, "packs"), "*", SearchOption.AllDirectories).Select(f => Path.GetFileName(f)).ToArray();

    public Task<BackupRun> BackupAsync(long packTarget, CancellationToken ct) => BackupAsync(packTarget, _ => { }, useCache: true, ct);

    /// <summary>
    /// Backs up <see cref="Source"/>, calling <paramref name="beforeUpload"/> with the 1-based number of each pack before it
    /// is stored (a test makes an upload fail by throwing from it). With <paramref name="useCache"/> the metadata cache of
    /// the previous successful run is used, and replaced after this one succeeds, as the agent does after the commit.
    /// </summary>
    public Task<BackupRun> BackupAsync(long packTarget, Action<int> beforeUpload, bool useCache, CancellationToken ct) =>
        BackupAsync(packTarget, beforeUpload, useCache, (_, _) => { }, ct);

    /// <summary>As above, with the archiver's progress callback (bytes and files so far), called after each file is added.</summary>
    public async Task<BackupRun> BackupAsync(long packTarget, Action<int> beforeUpload, bool useCache, Action<long, int> progress, CancellationToken ct)
    {
        var known = new HashSet<ChunkId>(Index.Keys);
        using var cache = useCache ? MetadataCache.Load(CachePath, out _) : null;
        var uploads = 0;
        await using var pipeline = new ChunkPipeline(Keys, known, BackupScratch, packTarget, (file, packId, _, token) =>
        {
            beforeUpload(Interlocked.Increment(ref uploads)); // the pipeline runs two uploads at once
            return UploadAsync(file, packId, token);
        }, ct: ct);
        var result = await new Archiver(NullLogger.Instance).ArchiveAsync(Source, pipeline, known, cache, Filter, progress, ct);
        var manifest = Commit(result.TreeChunks, result.Referenced);
        cache?.Save();
        return new BackupRun(result, manifest);
    }

    /// <summary>Stores a tree made by the test (as a tampering agent could) and returns a manifest for it.</summary>
    public async Task<Manifest> StoreTreeAsync(Tree tree, CancellationToken ct)
    {
        var known = new HashSet<ChunkId>(Index.Keys);
        var treeChunks = new List<ChunkId>();
        await using (var pipeline = new ChunkPipeline(Keys, known, BackupScratch, 16 << 20, (file, packId, _, token) => UploadAsync(file, packId, token), ct: ct))
        {
            foreach (var chunk in new FastCdcChunker().Chunks(new MemoryStream(tree.ToBytes())))
                treeChunks.Add(await pipeline.AddAsync(chunk.Data));
            await pipeline.CompleteAsync();
        }
        var referenced = tree.Entries.SelectMany(e => e.Chunks ?? []).Select(ChunkId.Parse).Concat(treeChunks).ToHashSet();
        return Commit(treeChunks, referenced);
    }

    private async Task UploadAsync(string file, string packId, CancellationToken ct)
    {
        await using var content = File.OpenRead(file);
        var (_, entries) = await Store.PutPackAsync(packId, content, long.MaxValue, ct);
        lock (Index) // two uploads at once, like two requests to the server
            foreach (var e in entries) Index.TryAdd(e.Id, ChunkLocation.Of(packId, e));
    }

    /// <summary>What the server does on commit: every referenced chunk must be indexed, and the manifest names their packs.</summary>
    private Manifest Commit(IEnumerable<ChunkId> treeChunks, IEnumerable<ChunkId> referenced)
    {
        var packs = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var id in referenced)
            packs.Add(Index.TryGetValue(id, out var location) ? location.PackId : throw new InvalidDataException($"Chunk {id} is not stored on the server."));
        return new Manifest(Manifest.CurrentVersion, Guid.CreateVersion7(), treeChunks.Select(c => c.ToString()).ToList(), packs.ToList());
    }

    /// <summary>The index entries the server hands out for a restore: those of the manifest's packs.</summary>
    public Dictionary<ChunkId, ChunkLocation> IndexFor(Manifest manifest)
    {
        var packs = manifest.PackIds().ToHashSet(StringComparer.Ordinal);
        return Index.Where(e => packs.Contains(e.Value.PackId)).ToDictionary();
    }

    public Task<RestoreResult> RestoreAsync(Manifest manifest, string target, CancellationToken ct) =>
        RestoreAsync(manifest, target, RestoreOptions.Everything, ct);

    public Task<RestoreResult> RestoreAsync(Manifest manifest, string target, RestoreOptions options, CancellationToken ct) =>
        RestoreAsync(manifest, target, options, Keys, IndexFor(manifest), ct);

    public Task<RestoreResult> RestoreAsync(
        Manifest manifest, string target, RestoreOptions options, MasterKeys keys, IReadOnlyDictionary<ChunkId, ChunkLocation> index, CancellationToken ct) =>
        new Restorer(NullLogger.Instance).RestoreAsync(manifest, index, keys, target, RestoreScratch, async (packId, destination, token) =>
        {
            await using var pack = Store.OpenPack(packId);
            await pack.CopyToAsync(destination, token);
        }, options, ct);

    public string Write(string relative, byte[] content, UnixFileMode? mode = null, DateTime? mtimeUtc = null)
    {
        var path = Path.Combine(Source, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, content);
        if (mode is { } m) File.SetUnixFileMode(path, m);
        if (mtimeUtc is { } t) File.SetLastWriteTimeUtc(path, t);
        return path;
    }

    public static void MakeFifo(string path) => Run("mkfifo", path);

    public static string Run(string program, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { UseShellExecute = false, RedirectStandardOutput = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed with {process.ExitCode}.");
        return output;
    }

    public void Dispose()
    {
        Keys.Dispose();
        _temp.Dispose();
    }
}
