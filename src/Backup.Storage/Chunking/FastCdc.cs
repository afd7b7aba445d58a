using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Backup.Storage.Chunking;

/// <summary>
/// FastCDC content-defined chunking (Xia et al., USENIX ATC 2016; IEEE TPDS 2020): a gear rolling hash
/// <c>h = (h &lt;&lt; 1) + Gear[byte]</c>, no cut before <see cref="FastCdcParameters.MinSize"/>, normalised
/// chunking with two masks around <see cref="FastCdcParameters.AverageSize"/>, a forced cut at
/// <see cref="FastCdcParameters.MaxSize"/>. A boundary depends only on the 64 bytes before it and on where the
/// current chunk started, so an edit disturbs the chunks around it and the boundaries resynchronise after it.
/// </summary>
public static class FastCdc
{
    /// <summary>Seed of the gear table; part of the repository format (see docs/format.md).</summary>
    public const string GearSeed = "Backup.Storage.FastCdc.Gear.v1";

    private static readonly ulong[] GearTable = BuildGear();

    /// <summary>
    /// The 256 gear values: <c>Gear[i]</c> is the first 8 bytes, little-endian, of
    /// SHA-256(UTF-8(<see cref="GearSeed"/>) || byte i). Deterministic, so every agent cuts identically.
    /// </summary>
    public static ReadOnlySpan<ulong> Gear => GearTable;

    private static ulong[] BuildGear()
    {
        var seed = Encoding.UTF8.GetBytes(GearSeed);
        var input = new byte[seed.Length + 1];
        seed.CopyTo(input, 0);
        var table = new ulong[256];
        Span<byte> digest = stackalloc byte[32];
        for (var i = 0; i < 256; i++)
        {
            input[^1] = (byte)i;
            SHA256.HashData(input, digest);
            table[i] = BinaryPrimitives.ReadUInt64LittleEndian(digest);
        }
        return table;
    }

    /// <summary>
    /// Length of the first chunk of <paramref name="data"/>. The caller must pass at least
    /// <see cref="FastCdcParameters.MaxSize"/> bytes unless <paramref name="data"/> is the rest of the input,
    /// in which case the whole remainder may become the (possibly short) last chunk.
    /// </summary>
    public static int NextCut(ReadOnlySpan<byte> data, FastCdcParameters parameters)
    {
        var length = data.Length;
        if (length <= parameters.MinSize) return length;
        if (length > parameters.MaxSize) length = parameters.MaxSize;
        var normal = Math.Min(parameters.AverageSize, length);

        ref var gear = ref MemoryMarshal.GetArrayDataReference(GearTable);
        ref var src = ref MemoryMarshal.GetReference(data);
        ulong hash = 0;
        var cut = Scan(ref src, ref gear, ref hash, parameters.MinSize, normal, parameters.MaskSmall);
        if (cut < 0) cut = Scan(ref src, ref gear, ref hash, Math.Max(normal, parameters.MinSize), length, parameters.MaskLarge);
        return cut >= 0 ? cut : length;
    }

    /// <summary>
    /// Rolls the hash over <c>[from, to)</c>; the length up to and including the first byte at which <c>hash &amp; mask</c>
    /// is zero, or -1 with <paramref name="hash"/> rolled to <paramref name="to"/>. Four bytes a round (the same hash,
    /// byte by byte, as one a round: one index extension and one loop test per four bytes instead of per byte).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Scan(ref byte src, ref ulong gear, ref ulong hash, int from, int to, ulong mask)
    {
        var h = hash;
        nint i = from, end = to;
        for (; i + 4 <= end; i += 4)
        {
            ref var p = ref Unsafe.Add(ref src, i);
            h = (h << 1) + Unsafe.Add(ref gear, p);
            if ((h & mask) == 0) return (int)i + 1;
            h = (h << 1) + Unsafe.Add(ref gear, Unsafe.Add(ref p, 1));
            if ((h & mask) == 0) return (int)i + 2;
            h = (h << 1) + Unsafe.Add(ref gear, Unsafe.Add(ref p, 2));
            if ((h & mask) == 0) return (int)i + 3;
            h = (h << 1) + Unsafe.Add(ref gear, Unsafe.Add(ref p, 3));
            if ((h & mask) == 0) return (int)i + 4;
        }
        for (; i < end; i++)
        {
            h = (h << 1) + Unsafe.Add(ref gear, Unsafe.Add(ref src, i));
            if ((h & mask) == 0) return (int)i + 1;
        }
        hash = h;
        return -1;
    }
}
