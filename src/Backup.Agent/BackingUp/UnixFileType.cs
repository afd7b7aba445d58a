using System.Runtime.InteropServices;

namespace Backup.Agent.BackingUp;

/// <summary>
/// .NET reports fifos, sockets and devices as plain files, and opening a fifo blocks forever, so the
/// archiver asks lstat(2) for the file type bits before reading anything.
/// </summary>
internal static partial class UnixFileType
{
    public enum Kind { Regular, Directory, Symlink, Fifo, Socket, CharDevice, BlockDevice, Unknown }

    [LibraryImport("libc", EntryPoint = "lstat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int LStat(string path, [Out] byte[] buffer);

    public static Kind Of(string path)
    {
        var offset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,   // st_dev, st_ino, st_nlink (8 bytes each), then st_mode
            Architecture.Arm64 => 16, // st_dev, st_ino, then st_mode
            _ => -1,
        };
        if (offset < 0) return Kind.Regular;
        var buffer = new byte[256];
        if (LStat(path, buffer) != 0) return Kind.Unknown;
        var mode = BitConverter.ToUInt32(buffer, offset);
        return (mode & 0xF000) switch
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
    }
}
