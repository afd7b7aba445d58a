using Backup.Agent.BackingUp;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Engine;

/// <summary>The walk takes an item's mode and mtime from one lstat(2); they must be what .NET reports, or restores would differ.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class UnixStatusTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("2026-11-25T10:11:12.1234567Z", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead)]
    [InlineData("1969-07-20T20:17:40.9999999Z", UnixFileMode.UserRead | UnixFileMode.SetUser | UnixFileMode.OtherExecute)] // before the epoch
    [InlineData("2001-01-01T00:00:00Z", UnixFileMode.None)]
    public void Mode_and_mtime_from_lstat_match_what_dotnet_reports(string mtime, UnixFileMode mode)
    {
        var file = Path.Combine(_dir.Path, "f.txt");
        File.WriteAllText(file, "hello");
        File.SetLastWriteTimeUtc(file, DateTime.Parse(mtime, null, System.Globalization.DateTimeStyles.RoundtripKind).ToUniversalTime());
        File.SetUnixFileMode(file, mode);

        var status = UnixFileType.Status(file)!.Value;

        var info = new FileInfo(file);
        status.Kind.ShouldBe(UnixFileType.Kind.Regular);
        status.Mode.ShouldBe((int)info.UnixFileMode);
        status.MtimeTicks.ShouldBe(info.LastWriteTimeUtc.Ticks);
        status.Size.ShouldBe(5);
    }

    [Fact]
    public void A_directory_and_a_symlink_are_told_apart_without_following_the_link()
    {
        var sub = Directory.CreateDirectory(Path.Combine(_dir.Path, "sub"));
        var link = Path.Combine(_dir.Path, "link");
        File.CreateSymbolicLink(link, sub.FullName);

        UnixFileType.Status(sub.FullName)!.Value.Kind.ShouldBe(UnixFileType.Kind.Directory);
        UnixFileType.Status(sub.FullName)!.Value.MtimeTicks.ShouldBe(sub.LastWriteTimeUtc.Ticks);
        UnixFileType.Status(link)!.Value.Kind.ShouldBe(UnixFileType.Kind.Symlink);
    }
}
