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
/// </summary>
public sealed class MetadataCache
{
    private static ReadOnlySpan<byte> Magic => "BKCACHE1"u8;
    private readonly Dictionary<string, CachedFile> _previous;
    private readonly Dictionary<string, CachedFile> _next = new(StringComparer.Ordinal);

    private MetadataCache(string path, Dictionary<string, CachedFile> previous)
    {
        FilePath = path;
        _previous = previous;
    }

    public string FilePath { get; }

    public int PreviousCount => _previous.Count;

    public static string PathFor(string stateDirectory, string sourceRoot) =>
        Path.Combine(stateDirectory, "cache", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Path.GetFullPath(sourceRoot))))[..32] + ".cache");

    /// <summary>Loads the cache; an absent or unreadable file gives an empty one (and the reason, for the log).</summary>
    public static MetadataCache Load(string path, out string? problem)
    {
        problem = null;
        var entries = new Dictionary<string, CachedFile>(StringComparer.Ordinal);
        if (!File.Exists(path)) return new MetadataCache(path, entries);
        try
        {
            using var reader = new BinaryReader(new BufferedStream(File.OpenRead(path), 1 << 16), Encoding.UTF8);
            Span<byte> magic = stackalloc byte[8];
            reader.BaseStream.ReadExactly(magic);
            if (!magic.SequenceEqual(Magic)) throw new InvalidDataException("not a metadata cache");
            var count = reader.ReadInt32();
            Span<byte> id = stackalloc byte[ChunkId.Size];
            for (var i = 0; i < count; i++)
            {
                var name = reader.ReadString();
                var size = reader.ReadInt64();
                var mtime = reader.ReadInt64();
                var ctime = reader.ReadInt64();
                var inode = reader.ReadUInt64();
                var chunks = new ChunkId[reader.ReadInt32()];
                for (var c = 0; c < chunks.Length; c++)
                {
                    reader.BaseStream.ReadExactly(id);
                    chunks[c] = new ChunkId(id);
                }
                entries[name] = new CachedFile(size, mtime, ctime, inode, chunks);
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            problem = $"the metadata cache {path} is unreadable ({e.Message}); every file is read";
            entries.Clear();
        }
        return new MetadataCache(path, entries);
    }

    /// <summary>The chunks of <paramref name="path"/> if it is unchanged since the last run and the server holds all of them.</summary>
    public ChunkId[]? Reusable(string path, UnixStatus status, ISet<ChunkId> known)
    {
        if (!_previous.TryGetValue(path, out var cached)) return null;
        if (cached.Size != status.Size || cached.MtimeNs != status.MtimeNs || cached.CtimeNs != status.CtimeNs || cached.Inode != status.Inode)
            return null;
        foreach (var id in cached.Chunks)
            if (!known.Contains(id)) return null;
        return cached.Chunks;
    }

    public void Record(string path, UnixStatus status, ChunkId[] chunks) =>
        _next[path] = new CachedFile(status.Size, status.MtimeNs, status.CtimeNs, status.Inode, chunks);

    /// <summary>Replaces the cache file with what this run recorded.</summary>
    public void Save()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
        var tmp = FilePath + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            using (var stream = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            using (var writer = new BinaryWriter(stream, Encoding.UTF8))
            {
                writer.Write(Magic);
                writer.Write(_next.Count);
                Span<byte> id = stackalloc byte[ChunkId.Size];
                foreach (var (name, file) in _next)
                {
                    writer.Write(name);
                    writer.Write(file.Size);
                    writer.Write(file.MtimeNs);
                    writer.Write(file.CtimeNs);
                    writer.Write(file.Inode);
                    writer.Write(file.Chunks.Length);
                    foreach (var chunk in file.Chunks)
                    {
                        chunk.WriteTo(id);
                        writer.Write(id);
                    }
                }
            }
            File.Move(tmp, FilePath, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
