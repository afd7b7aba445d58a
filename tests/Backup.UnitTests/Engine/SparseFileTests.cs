using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Backup.UnitTests.Engine;

/// <summary>A huge, mostly empty file (a VM disk, a database preallocation) backs up as a handful of chunks and restores sparse.</summary>
[UnsupportedOSPlatform("windows")]
public sealed partial class SparseFileTests : IDisposable
{
    private const long Size = 5L << 30;
    private const long DataAt = 9L << 29; // 4.5 GiB
    private readonly BackupRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static long AllocatedBytes(string path) => long.Parse(BackupRig.Run("stat", "-c", "%b", path).Trim()) * 512;

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(SafeFileHandle fd, long offset, int whence);

    private const int SeekData = 3, SeekHole = 4;

    /// <summary>
    /// The stretches of the file that hold data (lseek SEEK_DATA/SEEK_HOLE); everything else is a hole and reads as zeros,
    /// so checking these against the expected content checks the whole file without reading 5 GiB.
    /// </summary>
    private static List<(long Start, long End)> DataExtents(SafeFileHandle handle, long length)
    {
        var extents = new List<(long, long)>();
        for (long position = 0; position < length;)
        {
            var start = LSeek(handle, position, SeekData);
            if (start < 0) break; // ENXIO: only a hole is left
            var end = LSeek(handle, start, SeekHole);
            extents.Add((start, end));
            position = end;
        }
        return extents;
    }

    [Fact]
    public async Task Sparse_5_GiB_file_backs_up_and_restores_byte_exact_and_still_sparse()
    {
        var ct = TestContext.Current.CancellationToken;
        var source = Path.Combine(_rig.Source, "disk.img");
        var data = RandomNumberGenerator.GetBytes(4000);
        using (var file = File.OpenHandle(source, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.SetLength(file, Size);
            RandomAccess.Write(file, data, DataAt);
        }
        AllocatedBytes(source).ShouldBeLessThan(1L << 20, "the test needs a file system with sparse files");

        var run = await _rig.BackupAsync(16 << 20, ct);

        run.Archive.BytesRead.ShouldBe(Size);
        // Only the data is read (the holes are found with SEEK_DATA/SEEK_HOLE) and the tree says where the holes are.
        run.Archive.BytesScanned.ShouldBeLessThan(1L << 20);
        var entry = run.Entry("disk.img");
        entry.Holes.ShouldNotBeNull().Sum(h => h.Length).ShouldBe(Size - run.Archive.BytesScanned);
        entry.Holes!.ShouldAllBe(h => h.Offset + h.Length <= DataAt || h.Offset >= DataAt + data.Length);
        // The metadata cache keeps no holes: the next run reads the file's data again rather than take chunks without them.
        var again = await _rig.BackupAsync(16 << 20, ct);
        again.Entry("disk.img").Holes.ShouldBe(entry.Holes);
        again.Archive.BytesScanned.ShouldBe(run.Archive.BytesScanned);
        // Every 8 MiB run of zeros is the same chunk: the 5 GiB cost a few chunks and a few KiB of packs.
        run.Archive.Pipeline.ChunksNew.ShouldBeLessThanOrEqualTo(5);
        _rig.StoredPacks().Sum(_rig.Store.PackLength).ShouldBeLessThan(1L << 20);

        var target = _rig.NewTarget();
        await _rig.RestoreAsync(run.Manifest, target, ct);

        var restored = Path.Combine(target, "disk.img");
        new FileInfo(restored).Length.ShouldBe(Size);
        AllocatedBytes(restored).ShouldBeLessThan(64L << 20); // at most the few chunks around the data, not 5 GiB
        using var handle = File.OpenHandle(restored);
        var extents = DataExtents(handle, Size);
        extents.ShouldContain(e => e.Start <= DataAt && e.End >= DataAt + data.Length);
        foreach (var (start, end) in extents)
        {
            var bytes = new byte[end - start];
            RandomAccess.Read(handle, bytes, start).ShouldBe(bytes.Length);
            var expected = new byte[bytes.Length];
            var from = Math.Max(start, DataAt);
            var to = Math.Min(end, DataAt + data.Length);
            if (from < to) data.AsSpan((int)(from - DataAt), (int)(to - from)).CopyTo(expected.AsSpan((int)(from - start)));
            bytes.ShouldBe(expected, $"bytes {start}..{end}");
        }
    }
}
