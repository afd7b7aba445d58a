using System.Runtime.InteropServices;

namespace Backup.Agent.Restoring;

/// <summary>
/// Sets a symlink's own mtime: .NET's setters follow the link to its target (which may not exist, or may be outside the
/// restore), so utimensat(2) is called with AT_SYMLINK_NOFOLLOW, as <c>touch -h</c> does.
/// </summary>
internal static partial class NoFollow
{
    private const int AtCurrentDirectory = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const long UtimeOmit = (1L << 30) - 2; // leaves the access time as it is

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "utimensat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int UtimensAt(int directory, string path, ReadOnlySpan<Timespec> times, int flags);

    public static void SetLastWriteTimeUtc(string path, long utcTicks)
    {
        var nanos = (utcTicks - DateTime.UnixEpoch.Ticks) * 100;
        var seconds = Math.DivRem(nanos, 1_000_000_000, out var rest);
        if (rest < 0)
        {
            seconds--;
            rest += 1_000_000_000;
        }
        ReadOnlySpan<Timespec> times = [new Timespec { Nanoseconds = UtimeOmit }, new Timespec { Seconds = seconds, Nanoseconds = rest }];
        if (UtimensAt(AtCurrentDirectory, path, times, AtSymlinkNoFollow) != 0)
            throw new IOException($"Could not set the modification time of {path}: {Marshal.GetLastPInvokeErrorMessage()}");
    }
}
