using System.Security.Cryptography;
using System.Text;
using Backup.Storage.Crypto;

namespace Backup.Agent.BackingUp;

/// <summary>What the last successful run saw of a file: enough to trust its chunk list without reading it again.</summary>
public sealed record CachedFile(long Size, long MtimeNs, long CtimeNs, ulong Inode, ChunkId[] Chunks);

/// <summary>
/// The agent's local record of the files of one protected folder as of its last committed recovery point. A file
/// whose size, mtime, ctime and inode are unchanged, and whose chunks the server still holds, is reused without
/// reading a byte. The cache is only a hint: a missing or damaged cache file costs a full read, never a wrong backup,
/// and it is replaced (write, then rename) only after the server has committed the recovery point.
/// <para>Neither the old record nor the new one is held in memory: files are listed in the walk's order
/// (<see cref="WalkOrder"/>), so the old file is read alongside the walk, one entry ahead, and the new one is written as the
/// walk records files, to a temporary file that <see cref="Save"/> renames into place (and <see cref="Dispose"/> removes
/// when the run does not get that far).</para>
/// </summary>
public sealed class MetadataCache : IDisposable
{
    private static ReadOnlySpan<byte> Magic => "BKCACHE2"u8;

    private BinaryReader? _previous;
    private int _remaining;
    private (string Path, CachedFile File)? _current;
    private string? _previousPath;

    private readonly string _temporary;
    private BinaryWriter? _next;
    private int _nextCount;
    private string? _lastRecorded;

    private MetadataCache(string path, BinaryReader? previous, int count)
    {
        FilePath = path;
        _previous = previous;
        _remaining = count;
        _temporary = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
    }

    public string FilePath { get; }

    /// <summary>Why the old record stopped being used part-way (it was damaged or out of order), for the log; null if it was not.</summary>
    public string? Problem { get; private set; }

    public static string PathFor(string stateDirectory, string sourceRoot) =>
        Path.Combine(stateDirectory, "cache", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(sourceRoot))))[..32] + ".cache");

    /// <summary>
    /// Removes the temporaries (of caches and item snapshots) of runs that never got to rename or remove them: the agent was
    /// killed (kill -9, power lost) while writing one. Called when the agent starts, before any run, so none of them is in use.
    /// Returns what could not be removed, for the log.
    /// </summary>
    public static IReadOnlyList<string> RemoveLeftovers(string stateDirectory)
    {
        var folder = Path.Combine(stateDirectory, "cache");
        var problems = new List<string>();
        if (!Directory.Exists(folder)) return problems;
        foreach (var file in Directory.EnumerateFiles(folder, "*.tmp"))
            try
            {
                File.Delete(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problems.Add($"{file}: {e.Message}");
            }
        return problems;
    }

    /// <summary>Opens the cache; an absent or unreadable file gives an empty one (and the reason, for the log).</summary>
    public static MetadataCache Load(string path, out string? problem)
    {
        problem = null;
        if (!File.Exists(path)) return new MetadataCache(path, null, 0);
        BinaryReader? reader = null;
        try
        {
            reader = new BinaryReader(new BufferedStream(File.OpenRead(path), 1 << 16), Encoding.UTF8);
            Span<byte> magic = stackalloc byte[8];
            reader.BaseStream.ReadExactly(magic);
            if (!magic.SequenceEqual(Magic)) throw new InvalidDataException("not a metadata cache of this version");
            var count = reader.ReadInt32();
            if (count < 0) throw new InvalidDataException("a negative file count");
            var cache = new MetadataCache(path, reader, count);
            cache.ReadNext();
            if (cache.Problem is not null) problem = cache.Problem;
            return cache;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            reader?.Dispose();
            problem = $"the metadata cache {path} is unreadable ({e.Message}); every file is read";
            return new MetadataCache(path, null, 0);
        }
    }

    /// <summary>
    /// The chunks of <paramref name="path"/> if it is unchanged since the last run and the server holds all of them. Paths are
    /// asked for in walk order; the old record is read up to <paramref name="path"/>.
    /// </summary>
    public ChunkId[]? Reusable(string path, UnixStatus status, ISet<ChunkId> known)
    {
        while (_current is { } skipped && WalkOrder.Compare(skipped.Path, path) < 0) ReadNext(); // files gone since
        if (_current is not { } current || current.Path != path) return null;
        var cached = current.File;
        ReadNext();
        if (cached.Size != status.Size || cached.MtimeNs != status.MtimeNs || cached.CtimeNs != status.CtimeNs || cached.Inode != status.Inode)
            return null;
        foreach (var id in cached.Chunks)
            if (!known.Contains(id)) return null;
        return cached.Chunks;
    }

    /// <summary>Records a file of this run, in walk order.</summary>
    public void Record(string path, UnixStatus status, ChunkId[] chunks)
    {
        if (_lastRecorded is not null && WalkOrder.Compare(_lastRecorded, path) >= 0)
            throw new InvalidOperationException($"Files are recorded in walk order: '{path}' came after '{_lastRecorded}'.");
        _lastRecorded = path;
        _next ??= OpenNext();
        _next.Write(path);
        _next.Write(status.Size);
        _next.Write(status.MtimeNs);
        _next.Write(status.CtimeNs);
        _next.Write(status.Inode);
        _next.Write(chunks.Length);
        Span<byte> id = stackalloc byte[ChunkId.Size];
        foreach (var chunk in chunks)
        {
            chunk.WriteTo(id);
            _next.Write(id);
        }
        _nextCount++;
    }

    /// <summary>Replaces the cache file with what this run recorded.</summary>
    public void Save()
    {
        ClosePrevious();
        _next ??= OpenNext(); // a run without files: an empty record
        _next.Flush();
        _next.BaseStream.Position = Magic.Length;
        _next.Write(_nextCount);
        _next.Dispose();
        _next = null;
        File.Move(_temporary, FilePath, overwrite: true);
    }

    public void Dispose()
    {
        ClosePrevious();
        if (_next is null) return;
        _next.Dispose();
        _next = null;
        try
        {
            File.Delete(_temporary);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A stray temporary file is harmless: it is never read.
        }
    }

    /// <summary>The new record's temporary file, with its header; the count is written by <see cref="Save"/>.</summary>
    private BinaryWriter OpenNext()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        var writer = new BinaryWriter(new FileStream(_temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16), Encoding.UTF8);
        writer.Write(Magic);
        writer.Write(0);
        return writer;
    }

    private void ReadNext()
    {
        _current = null;
        if (_previous is null) return;
        if (_remaining == 0)
        {
            ClosePrevious();
            return;
        }
        try
        {
            _remaining--;
            var name = _previous.ReadString();
            var size = _previous.ReadInt64();
            var mtime = _previous.ReadInt64();
            var ctime = _previous.ReadInt64();
            var inode = _previous.ReadUInt64();
            var count = _previous.ReadInt32();
            // A chunk is 512 KiB or more, but for a file's last: a damaged count must not become a huge allocation.
            if (size < 0 || count < 0 || count > (size >> 18) + 2) throw new InvalidDataException("an impossible chunk count");
            var chunks = new ChunkId[count];
            Span<byte> id = stackalloc byte[ChunkId.Size];
            for (var c = 0; c < chunks.Length; c++)
            {
                _previous.BaseStream.ReadExactly(id);
                chunks[c] = new ChunkId(id);
            }
            if (_previousPath is not null && WalkOrder.Compare(_previousPath, name) >= 0) throw new InvalidDataException("files out of walk order");
            _previousPath = name;
            _current = (name, new CachedFile(size, mtime, ctime, inode, chunks));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            // What was read before the damage was sound; the rest of this run reads its files.
            Problem = $"the metadata cache {FilePath} is damaged ({e.Message}); the files after that point are read";
            ClosePrevious();
        }
    }

    private void ClosePrevious()
    {
        _previous?.Dispose();
        _previous = null;
        _current = null;
    }
}
