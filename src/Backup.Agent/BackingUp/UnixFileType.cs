using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Backup.Agent.BackingUp;

/// <summary>
/// What lstat(2) says of a path: its type, inode, size, change times (nanoseconds since the epoch) and permission bits
/// (<c>st_mode &amp; 07777</c>, what .NET calls <see cref="UnixFileMode"/>).
/// </summary>
public readonly record struct UnixStatus(UnixFileType.Kind Kind, ulong Inode, long Size, long MtimeNs, long CtimeNs, int Mode = 0)
{
    /// <summary>The mtime as .NET ticks since 0001-01-01 UTC (what <see cref="FileSystemInfo.LastWriteTimeUtc"/> gives).</summary>
    public long MtimeTicks => DateTime.UnixEpoch.Ticks + Math.DivRem(MtimeNs, 100, out var rest) - (rest < 0 ? 1 : 0);
}

/// <summary>
/// .NET reports fifos, sockets and devices as plain files, and opening a fifo blocks forever, so the
/// archiver asks lstat(2) for the file type bits before reading anything. The same call gives the inode and
/// ctime the metadata cache needs, which .NET does not expose.
/// </summary>
public static partial class UnixFileType
{
    public enum Kind { Regular, Directory, Symlink, Fifo, Socket, CharDevice, BlockDevice, Unknown }

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int LStat(string path, Span<byte> buffer);

    public static Kind Of(string path) => Status(path)?.Kind ?? Kind.Unknown;

    /// <summary>Null when the path cannot be stat'ed (it vanished, or a directory on the way is unreadable).</summary>
    public static UnixStatus? Status(string path)
    {
        // struct stat on Linux: st_ino at 8 on both; st_mode at 24 (x64) or 16 (arm64); st_size at 48,
        // st_mtim at 88 and st_ctim at 104 (timespec: seconds, nanoseconds) on both.
        var modeOffset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,
            Architecture.Arm64 => 16,
            _ => -1,
        };
        if (modeOffset < 0) return new UnixStatus(Kind.Regular, 0, 0, 0, 0);
        Span<byte> span = stackalloc byte[256];
        if (LStat(path, span) != 0) return null;
        var mode = BinaryPrimitives.ReadUInt32LittleEndian(span[modeOffset..]);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => Kind.Regular,
            0x4000 => Kind.Directory,
            0xA000 => Kind.Symlink,
            0x1000 => Kind.Fifo,
            0xC000 => Kind.Socket,
            0x2000 => Kind.CharDevice,
            0x6000 => Kind.BlockDevice,
            _ => Kind.Unknown,
        };
        static long Nanos(ReadOnlySpan<byte> timespec) =>
            BinaryPrimitives.ReadInt64LittleEndian(timespec) * 1_000_000_000 + BinaryPrimitives.ReadInt64LittleEndian(timespec[8..]);
        return new UnixStatus(kind, BinaryPrimitives.ReadUInt64LittleEndian(span[8..]), BinaryPrimitives.ReadInt64LittleEndian(span[48..]),
            Nanos(span[88..]), Nanos(span[104..]), (int)(mode & 0xFFF));
    }
}
