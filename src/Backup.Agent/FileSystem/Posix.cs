using System.Runtime.InteropServices;
using System.Text;
using Backup.Storage.Format;
using Microsoft.Win32.SafeHandles;

namespace Backup.Agent.FileSystem;

/// <summary>
/// The system calls the agent needs beyond what .NET offers (hard links, device nodes, holes) or offers only for names that are
/// UTF-8: each takes a path in its escaped form (<see cref="ItemName"/>) and hands the kernel the name's exact bytes, so an item
/// whose name is not UTF-8 is read and written like any other. Failures are <see cref="IOException"/>s with the system's reason.
/// </summary>
public static unsafe partial class Posix
{
    private const int AtCurrentDirectory = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const long UtimeOmit = (1L << 30) - 2;
    private const int OpenReadOnly = 0, OpenNoFollow = 0x20000, OpenCloseOnExec = 0x80000, OpenNonBlocking = 0x800;
    public const int SeekData = 3, SeekHole = 4;
    private const int NoSuchDeviceOrAddress = 6; // ENXIO: no data after the offset

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true)]
    private static partial int LStat(byte* path, byte* buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true)]
    private static partial int Open(byte* path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "opendir", SetLastError = true)]
    private static partial nint OpenDir(byte* path);

    [LibraryImport("libc", EntryPoint = "readdir", SetLastError = true)]
    private static partial byte* ReadDir(nint directory);

    [LibraryImport("libc", EntryPoint = "closedir")]
    private static partial int CloseDir(nint directory);

    [LibraryImport("libc", EntryPoint = "readlink", SetLastError = true)]
    private static partial nint ReadLinkNative(byte* path, byte* buffer, nint size);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true)]
    private static partial int LinkNative(byte* existing, byte* path);

    [LibraryImport("libc", EntryPoint = "symlink", SetLastError = true)]
    private static partial int SymlinkNative(byte* target, byte* path);

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true)]
    private static partial int RenameNative(byte* from, byte* to);

    [LibraryImport("libc", EntryPoint = "mknod", SetLastError = true)]
    private static partial int MknodNative(byte* path, uint mode, ulong device);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true)]
    private static partial int MkdirNative(byte* path, uint mode);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true)]
    private static partial int ChmodNative(byte* path, uint mode);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true)]
    private static partial int UnlinkNative(byte* path);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true)]
    private static partial int UtimensAt(int directory, byte* path, Timespec* times, int flags);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(SafeFileHandle file, long offset, int whence);

    /// <summary>The path's bytes with a closing NUL.</summary>
    public static byte[] Bytes(string path)
    {
        var bytes = ItemName.ToBytes(path) ?? throw new IOException($"'{path}' is not a well-formed escaped name (docs/format.md, \"Names\").");
        if (bytes.AsSpan().IndexOf((byte)0) >= 0) throw new IOException($"'{path}' holds a NUL, which no name may.");
        var terminated = new byte[bytes.Length + 1];
        bytes.CopyTo(terminated, 0);
        return terminated;
    }

    private static IOException Error(string what, string path) =>
        new($"Could not {what} {path}: {Marshal.GetLastPInvokeErrorMessage()}", Marshal.GetLastPInvokeError());

    /// <summary>lstat(2) into <paramref name="buffer"/> (256 bytes); false when the path cannot be stat'ed.</summary>
    public static bool TryLStat(string path, Span<byte> buffer)
    {
        Span<byte> small = stackalloc byte[512];
        var name = PathBytes(path, small);
        fixed (byte* p = name)
        fixed (byte* b = buffer)
            return LStat(p, b) == 0;
    }

    /// <summary>True when something has this name (a dangling symlink too).</summary>
    public static bool Exists(string path)
    {
        Span<byte> stat = stackalloc byte[256];
        return TryLStat(path, stat);
    }

    /// <summary>
    /// The path as NUL-terminated bytes, in <paramref name="scratch"/> when it fits and needs no unescaping (the walk's common
    /// case, without an allocation).
    /// </summary>
    private static ReadOnlySpan<byte> PathBytes(string path, Span<byte> scratch)
    {
        if (!ItemName.IsEscaped(path) && Encoding.UTF8.GetMaxByteCount(path.Length) < scratch.Length)
        {
            var length = Encoding.UTF8.GetBytes(path, scratch);
            scratch[length] = 0;
            return scratch[..(length + 1)];
        }
        return Bytes(path);
    }

    /// <summary>Opens a file to read without following a symlink (nor blocking on a fifo that took its place).</summary>
    public static SafeFileHandle OpenRead(string path)
    {
        fixed (byte* p = Bytes(path))
        {
            var fd = Open(p, OpenReadOnly | OpenNoFollow | OpenCloseOnExec | OpenNonBlocking, 0);
            if (fd < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == 2) throw new FileNotFoundException($"Could not open {path}: {Marshal.GetLastPInvokeErrorMessage()}", path);
                if (errno == 13) throw new UnauthorizedAccessException($"Could not open {path}: {Marshal.GetLastPInvokeErrorMessage()}");
                throw Error("open", path);
            }
            return new SafeFileHandle(fd, ownsHandle: true);
        }
    }

    /// <summary>A folder's entries (not "." and ".."), names escaped, each with whether readdir says it is a folder.</summary>
    public static List<(string Name, bool IsDirectory)> List(string directory)
    {
        var entries = new List<(string, bool)>();
        fixed (byte* p = Bytes(directory))
        {
            var dir = OpenDir(p);
            if (dir == 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                var message = $"Could not list {directory}: {Marshal.GetLastPInvokeErrorMessage()}";
                throw errno == 13 ? new UnauthorizedAccessException(message) : new IOException(message, errno);
            }
            try
            {
                while (true)
                {
                    Marshal.SetLastPInvokeError(0);
                    var entry = ReadDir(dir);
                    if (entry == null)
                    {
                        if (Marshal.GetLastPInvokeError() != 0) throw Error("list", directory);
                        break;
                    }
                    // struct dirent on 64-bit Linux: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
                    var name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(entry + 19);
                    if (name is [(byte)'.'] or [(byte)'.', (byte)'.']) continue;
                    entries.Add((ItemName.FromBytes(name), entry[18] == 4));
                }
            }
            finally
            {
                CloseDir(dir);
            }
        }
        return entries;
    }

    /// <summary>A symlink's target, escaped like names (a target is bytes too).</summary>
    public static string ReadLink(string path)
    {
        var buffer = new byte[4096];
        fixed (byte* p = Bytes(path))
        fixed (byte* b = buffer)
        {
            var length = ReadLinkNative(p, b, buffer.Length);
            if (length < 0) throw Error("read the link", path);
            return ItemName.FromBytes(buffer.AsSpan(0, (int)length));
        }
    }

    public static void Link(string existing, string path)
    {
        fixed (byte* e = Bytes(existing))
        fixed (byte* p = Bytes(path))
            if (LinkNative(e, p) != 0) throw Error("link", path);
    }

    public static void Symlink(string target, string path)
    {
        fixed (byte* t = Bytes(target))
        fixed (byte* p = Bytes(path))
            if (SymlinkNative(t, p) != 0) throw Error("create the symlink", path);
    }

    public static void Rename(string from, string to)
    {
        fixed (byte* f = Bytes(from))
        fixed (byte* t = Bytes(to))
            if (RenameNative(f, t) != 0) throw Error("rename into", to);
    }

    /// <summary>mknod(2): <paramref name="type"/> is the file type bits (S_IFIFO, S_IFCHR, S_IFBLK).</summary>
    public static void Mknod(string path, uint type, int mode, uint major, uint minor)
    {
        fixed (byte* p = Bytes(path))
            if (MknodNative(p, type | (uint)(mode & 0xFFF), MakeDevice(major, minor)) != 0) throw Error("create the special file", path);
    }

    /// <summary>glibc's makedev: 12 bits of major and 20 of minor in the classic places, the rest above.</summary>
    public static ulong MakeDevice(uint major, uint minor) =>
        ((ulong)(major & 0xfff) << 8) | ((ulong)(major & ~0xfffu) << 32) | (minor & 0xffu) | ((ulong)(minor & ~0xffu) << 12);

    public static (uint Major, uint Minor) SplitDevice(ulong device) =>
        ((uint)(((device >> 8) & 0xfff) | ((device >> 32) & ~0xfffUL)), (uint)((device & 0xff) | ((device >> 12) & ~0xffUL)));

    /// <summary>Makes the folder and any missing folder above it (like mkdir -p); one already there is fine.</summary>
    public static void CreateDirectories(string path)
    {
        if (!ItemName.IsEscaped(path))
        {
            Directory.CreateDirectory(path);
            return;
        }
        var parent = Path.GetDirectoryName(path);
        if (parent is not null && parent != path) CreateDirectories(parent);
        fixed (byte* p = Bytes(path))
            if (MkdirNative(p, 0x1FF) != 0 && Marshal.GetLastPInvokeError() != 17) throw Error("create the folder", path); // 17: EEXIST
        Span<byte> stat = stackalloc byte[256];
        if (!TryLStat(path, stat)) throw new IOException($"Could not create the folder {path}.");
    }

    public static void Chmod(string path, int mode)
    {
        fixed (byte* p = Bytes(path))
            if (ChmodNative(p, (uint)(mode & 0xFFF)) != 0) throw Error("set the mode of", path);
    }

    public static void Unlink(string path)
    {
        fixed (byte* p = Bytes(path))
            if (UnlinkNative(p) != 0) throw Error("remove", path);
    }

    /// <summary>Sets the path's own mtime (not a symlink's target's), leaving its access time as it is.</summary>
    public static void SetMtime(string path, long utcTicks)
    {
        var nanos = (utcTicks - DateTime.UnixEpoch.Ticks) * 100;
        var seconds = Math.DivRem(nanos, 1_000_000_000, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += 1_000_000_000;
        }
        var times = stackalloc Timespec[2];
        times[0] = new Timespec { Nanoseconds = UtimeOmit };
        times[1] = new Timespec { Seconds = seconds, Nanoseconds = rest };
        fixed (byte* p = Bytes(path))
            if (UtimensAt(AtCurrentDirectory, p, times, AtSymlinkNoFollow) != 0) throw Error("set the modification time of", path);
    }

    /// <summary>
    /// The next stretch of data at or after <paramref name="offset"/> (lseek SEEK_DATA then SEEK_HOLE), or null when only a hole
    /// is left. A file system without hole reporting answers the whole rest as data.
    /// </summary>
    public static (long Start, long End)? NextData(SafeFileHandle file, long offset, long size)
    {
        var start = LSeek(file, offset, SeekData);
        if (start < 0)
        {
            if (Marshal.GetLastPInvokeError() == NoSuchDeviceOrAddress) return null;
            return (offset, size);
        }
        if (start >= size) return null;
        var end = LSeek(file, start, SeekHole);
        return (start, end < 0 ? size : Math.Min(end, size));
    }
}
