using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace Backup.UnitTests.Primitives;

/// <summary>Reproducible inputs: a seeded xorshift64* (independent of System.Random's algorithm) and text.</summary>
internal static class TestData
{
    public static byte[] Random(ulong seed, int length)
    {
        var bytes = new byte[length];
        var words = MemoryMarshal.Cast<byte, ulong>(bytes.AsSpan(0, length / 8 * 8));
        var state = seed * 0x9E3779B97F4A7C15UL | 1;
        for (var i = 0; i < words.Length; i++) words[i] = BitConverter.IsLittleEndian ? Next(ref state) : BinaryPrimitives.ReverseEndianness(Next(ref state));
        var last = Next(ref state);
        for (var i = words.Length * 8; i < length; i++, last >>= 8) bytes[i] = (byte)last;
        return bytes;
    }

    private static ulong Next(ref ulong state)
    {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1DUL;
    }

    /// <summary>Log-like text: compressible, but not periodic (line numbers and a random field vary).</summary>
    public static byte[] Text(ulong seed, int length)
    {
        var noise = Random(seed, 1 << 16);
        var sb = new StringBuilder(length + 200);
        for (var line = 0; sb.Length < length; line++)
        {
            sb.Append("2026-11-25T14:47:").Append(line % 60).Append(" INFO backup agent #").Append(line)
              .Append(" read file /srv/data/folder-").Append(noise[line % noise.Length])
              .Append("/report-").Append(noise[(line * 7) % noise.Length]).Append(".docx ok\n");
        }
        return Encoding.ASCII.GetBytes(sb.ToString(0, length));
    }

    /// <summary>Half random, half text, interleaved in 1 MiB stretches — like a real folder.</summary>
    public static byte[] Mixed(ulong seed, int length)
    {
        var random = Random(seed, length);
        var text = Text(seed + 1, length);
        var result = new byte[length];
        for (var offset = 0; offset < length; offset += 1 << 20)
        {
            var n = Math.Min(1 << 20, length - offset);
            ((offset >> 20) % 2 == 0 ? random : text).AsSpan(offset, n).CopyTo(result.AsSpan(offset));
        }
        return result;
    }
}

/// <summary>A stream that hands out at most a few bytes per read, as pipes and sockets do.</summary>
internal sealed class TrickleStream(byte[] data, int maxPerRead) : Stream
{
    private int _position;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = Math.Min(Math.Min(count, maxPerRead), data.Length - _position);
        data.AsSpan(_position, n).CopyTo(buffer.AsSpan(offset));
        _position += n;
        return n;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
