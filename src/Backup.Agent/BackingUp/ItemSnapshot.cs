using System.Text;
using Backup.Storage.Contracts;
using Backup.Storage.Format;

namespace Backup.Agent.BackingUp;

/// <summary>
/// The items (path, kind, size, mtime) of the last recovery point whose commit the server accepted for one protected folder,
/// kept beside the metadata cache so the next backup sends the server's item catalog only what changed
/// (<see cref="CatalogChanges"/>) instead of every item again. Like the cache it is only a hint: absent, unreadable or out of
/// step with the server (which answers 409 then), the agent sends every item. Entries are in the walk's order (each folder's
/// items by ordinal name, then its subfolders' items, depth first: <see cref="WalkOrder"/>), so the comparison with the new
/// tree is one pass over both without holding the old list in memory.
/// </summary>
public static class ItemSnapshot
{
    private static ReadOnlySpan<byte> Magic => "BKITEMS1"u8;

    public static string PathFor(string cachePath) => Path.ChangeExtension(cachePath, ".items");

    /// <summary>Replaces the snapshot with <paramref name="entries"/> (the tree in walk order), as of <paramref name="recoveryPointId"/>.</summary>
    public static void Save(string path, Guid recoveryPointId, IReadOnlyList<TreeEntry> entries)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        using (var writer = new BinaryWriter(stream, Encoding.UTF8))
        {
            writer.Write(Magic);
            writer.Write(recoveryPointId.ToByteArray());
            writer.Write(entries.Count);
            foreach (var e in entries)
            {
                writer.Write(e.Path);
                writer.Write((byte)e.Kind);
                writer.Write(e.Size);
                writer.Write(e.MtimeUtcTicks);
            }
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Forgets the snapshot (the next backup sends every item).</summary>
    public static void Delete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A snapshot that cannot be removed is out of step at worst: the server then asks for every item.
        }
    }

    /// <summary>
    /// What changed from the snapshot to <paramref name="entries"/> (the new tree, in walk order), or null (with the reason in
    /// <paramref name="problem"/>, null when there simply is no snapshot) when the changes cannot be told: then send every item.
    /// </summary>
    public static CatalogChanges? Changes(string path, IReadOnlyList<TreeEntry> entries, out string? problem)
    {
        problem = null;
        if (!File.Exists(path)) return null;
        try
        {
            using var reader = new BinaryReader(new BufferedStream(File.OpenRead(path), 1 << 16), Encoding.UTF8);
            Span<byte> magic = stackalloc byte[8];
            reader.BaseStream.ReadExactly(magic);
            if (!magic.SequenceEqual(Magic)) throw new InvalidDataException("not an item snapshot");
            Span<byte> id = stackalloc byte[16];
            reader.BaseStream.ReadExactly(id);
            var basePoint = new Guid(id);
            var remaining = reader.ReadInt32();
            if (remaining < 0) throw new InvalidDataException("a negative item count");

            var added = new List<CatalogEntry>();
            var removed = new List<string>();
            string? previousOld = null;
            var old = Next();
            string? previousNew = null;
            foreach (var e in entries)
            {
                Memory.YoungGarbage.Collect(); // every old path read is garbage at once
                if (previousNew is not null && WalkOrder.Compare(previousNew, e.Path) >= 0)
                    throw new InvalidDataException("the new tree is not in walk order");
                previousNew = e.Path;
                while (old is { } o && WalkOrder.Compare(o.Path, e.Path) < 0)
                {
                    removed.Add(o.Path);
                    old = Next();
                }
                if (old is { } same && same.Path == e.Path)
                {
                    if (same.Kind != e.Kind || same.Size != e.Size || same.MtimeTicks != e.MtimeUtcTicks)
                    {
                        removed.Add(e.Path);
                        added.Add(Entry(e));
                    }
                    old = Next();
                }
                else added.Add(Entry(e));
            }
            for (; old is { } rest; old = Next()) removed.Add(rest.Path);
            return new CatalogChanges(basePoint, added, removed);

            Old? Next()
            {
                if (remaining == 0) return null;
                remaining--;
                var next = new Old(reader.ReadString(), (EntryKind)reader.ReadByte(), reader.ReadInt64(), reader.ReadInt64());
                if (previousOld is not null && WalkOrder.Compare(previousOld, next.Path) >= 0) throw new InvalidDataException("the snapshot is not in walk order");
                previousOld = next.Path;
                return next;
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException)
        {
            problem = $"the item snapshot {path} is unusable ({e.Message}); every item is sent to the catalog";
            return null;
        }
    }

    public static CatalogEntry Entry(TreeEntry e) => new(e.Path, e.Kind, e.Size, new DateTimeOffset(e.MtimeUtcTicks, TimeSpan.Zero));

    private readonly record struct Old(string Path, EntryKind Kind, long Size, long MtimeTicks);
}

/// <summary>
/// The order in which the archiver lists items: a folder's items by ordinal name, then, depth first, the items of each of its
/// subfolders in name order. So an item comes after every item whose folder precedes its folder (folders compared name by
/// name, a folder before the folders inside it), and after the items of its own folder with smaller names.
/// </summary>
public static class WalkOrder
{
    public static int Compare(string a, string b)
    {
        var slashA = a.LastIndexOf('/');
        var slashB = b.LastIndexOf('/');
        var folderA = slashA < 0 ? ReadOnlySpan<char>.Empty : a.AsSpan(0, slashA);
        var folderB = slashB < 0 ? ReadOnlySpan<char>.Empty : b.AsSpan(0, slashB);
        var byFolder = CompareFolders(folderA, folderB);
        return byFolder != 0 ? byFolder : a.AsSpan(slashA + 1).SequenceCompareTo(b.AsSpan(slashB + 1));
    }

    /// <summary>Name by name; a folder comes before the folders inside it.</summary>
    private static int CompareFolders(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        while (true)
        {
            if (a.IsEmpty || b.IsEmpty) return a.IsEmpty ? (b.IsEmpty ? 0 : -1) : 1;
            var endA = a.IndexOf('/');
            var endB = b.IndexOf('/');
            var nameA = endA < 0 ? a : a[..endA];
            var nameB = endB < 0 ? b : b[..endB];
            var byName = nameA.SequenceCompareTo(nameB);
            if (byName != 0) return byName;
            a = endA < 0 ? ReadOnlySpan<char>.Empty : a[(endA + 1)..];
            b = endB < 0 ? ReadOnlySpan<char>.Empty : b[(endB + 1)..];
        }
    }
}
