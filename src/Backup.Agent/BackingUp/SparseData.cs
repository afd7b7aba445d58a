using Backup.Agent.FileSystem;
using Backup.Storage.Format;
using Microsoft.Win32.SafeHandles;

namespace Backup.Agent.BackingUp;

/// <summary>
/// A file's holes, found with lseek SEEK_DATA/SEEK_HOLE, and a stream of its data alone: a 5 GiB file holding 14 bytes is read
/// as 14 bytes, not as 5 GiB of zeros, and the tree records where the holes are (docs/format.md, <c>holes</c>).
/// </summary>
public static class SparseData
{
    /// <summary>
    /// Holes shorter than this are read as zeros: each recorded hole costs the tree a few dozen bytes, and a file system reports
    /// holes block by block (4 KiB), so a fragmented file could otherwise add thousands of entries for little saved reading.
    /// </summary>
    public const long MinimumHole = 64 << 10;

    /// <summary>
    /// Whether the file may have holes at all: it occupies fewer 512-byte blocks than its size needs. Most files do not, and are
    /// read as before without asking the file system where their data lies.
    /// </summary>
    public static bool MayHaveHoles(UnixStatus status) => status.Size >= MinimumHole && status.Blocks * 512 < status.Size;

    /// <summary>The file's holes of at least <see cref="MinimumHole"/> bytes, in order; empty when it has none.</summary>
    public static List<FileHole> Find(SafeFileHandle file, long size)
    {
        var holes = new List<FileHole>();
        long position = 0;
        while (position < size)
        {
            var data = Posix.NextData(file, position, size);
            var holeEnd = data?.Start ?? size;
            if (holeEnd - position >= MinimumHole) holes.Add(new FileHole(position, holeEnd - position));
            if (data is not { } extent) break;
            position = extent.End;
        }
        return holes;
    }

    /// <summary>The bytes of <paramref name="file"/> outside <paramref name="holes"/>, in file order, read once.</summary>
    public sealed class DataStream(SafeFileHandle file, long size, IReadOnlyList<FileHole> holes) : Stream
    {
        private long _position; // in the file
        private int _nextHole;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(Span<byte> buffer)
        {
            while (_nextHole < holes.Count && holes[_nextHole].Offset <= _position)
            {
                _position = Math.Max(_position, holes[_nextHole].Offset + holes[_nextHole].Length);
                _nextHole++;
            }
            var end = _nextHole < holes.Count ? holes[_nextHole].Offset : size;
            if (_position >= end) return 0;
            var read = RandomAccess.Read(file, buffer[..(int)Math.Min(buffer.Length, end - _position)], _position);
            _position += read;
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
