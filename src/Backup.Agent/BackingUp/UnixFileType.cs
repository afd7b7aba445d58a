using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Backup.Agent.BackingUp;

/// <summary>
/// What lstat(2) says of a path: its type, inode, size, change times (nanoseconds since the epoch) and permission bits
/// (<c>st_mode &amp; 07777</c>, what .NET calls <see cref="UnixFileMode"/>); the file system it is on (<see cref="Device"/>), how
/// many names it has (<see cref="Links"/>), the device a device node stands for (<see cref="Rdev"/>) and the 512-byte blocks it
/// occupies (<see cref="Blocks"/>, fewer than its size needs when it has holes).
/// </summary>
public readonly record struct UnixStatus(
    UnixFileType.Kind Kind, ulong Inode, long Size, long MtimeNs, long CtimeNs, int Mode = 0, ulong Device = 0, long Links = 1, ulong Rdev = 0,
    long Blocks = 0)
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

    public static Kind Of(string path) => Status(path)?.Kind ?? Kind.Unknown;

    /// <summary>Null when the path cannot be stat'ed (it vanished, or a directory on the way is unreadable).</summary>
    public static UnixStatus? Status(string path)
    {
        // struct stat on Linux: st_dev at 0 and st_ino at 8 on both; st_nlink at 16 (x64, 8 bytes) or 20 (arm64, 4 bytes);
        // st_mode at 24 (x64) or 16 (arm64); st_rdev at 40 (x64) or 32 (arm64); st_size at 48, st_blocks at 64,
        // st_mtim at 88 and st_ctim at 104 (timespec: seconds, nanoseconds) on both.
        var x64 = RuntimeInformation.ProcessArchitecture == Architecture.X64;
        if (!x64 && RuntimeInformation.ProcessArchitecture != Architecture.Arm64) return new UnixStatus(Kind.Regular, 0, 0, 0, 0);
        var modeOffset = x64 ? 24 : 16;
        Span<byte> span = stackalloc byte[256];
        if (!FileSystem.Posix.TryLStat(path, span)) return null;
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
            Nanos(span[88..]), Nanos(span[104..]), (int)(mode & 0xFFF), BinaryPrimitives.ReadUInt64LittleEndian(span),
            x64 ? (long)BinaryPrimitives.ReadUInt64LittleEndian(span[16..]) : BinaryPrimitives.ReadUInt32LittleEndian(span[20..]),
            BinaryPrimitives.ReadUInt64LittleEndian(span[(x64 ? 40 : 32)..]), BinaryPrimitives.ReadInt64LittleEndian(span[64..]));
    }
}
