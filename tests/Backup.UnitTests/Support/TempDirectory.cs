namespace Backup.UnitTests.Support;

/// <summary>A fresh directory under the system temp folder, removed with everything in it on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("backup-unit-").FullName;
    }

    public string Path { get; }

    /// <summary>Creates (if needed) and returns a sub-directory.</summary>
    public string Sub(string name) => Directory.CreateDirectory(System.IO.Path.Combine(Path, name)).FullName;

    public void Dispose()
    {
        if (!Directory.Exists(Path)) return;
        // Tests make read-only directories; give them back write permission so they can be emptied.
        if (!OperatingSystem.IsWindows())
        {
            foreach (var dir in new DirectoryInfo(Path).EnumerateDirectories("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint }))
            {
                // Symlinks are skipped (not entered): a link to "." or ".." would make the walk endless. A name that is not
                // UTF-8 cannot be opened through .NET at all; rm removes those below.
                if (dir.Name.Contains('\uFFFD')) continue;
                dir.UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            }
        }
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException) when (!OperatingSystem.IsWindows())
        {
            // Names that are not UTF-8 cannot be deleted through .NET; rm below takes them.
        }
        if (Directory.Exists(Path) && !OperatingSystem.IsWindows())
        {
            using var rm = System.Diagnostics.Process.Start("rm", ["-rf", "--", Path])!;
            rm.WaitForExit();
        }
    }
}
