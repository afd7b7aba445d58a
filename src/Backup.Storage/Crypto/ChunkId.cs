using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Backup.Storage.Crypto;

/// <summary>
/// The 32-byte keyed BLAKE3 of a chunk's plaintext (see <see cref="ChunkIdHasher"/>), written as 64 lowercase
/// hex characters. A value type of four words so that indexes of millions of ids cost no per-id object.
/// </summary>
public readonly record struct ChunkId
{
    public const int Size = 32;

    private readonly ulong _a, _b, _c, _d;

    public ChunkId(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Size) throw new ArgumentException($"A chunk id is {Size} bytes, not {bytes.Length}.", nameof(bytes));
        _a = BinaryPrimitives.ReadUInt64BigEndian(bytes);
        _b = BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]);
        _c = BinaryPrimitives.ReadUInt64BigEndian(bytes[16..]);
        _d = BinaryPrimitives.ReadUInt64BigEndian(bytes[24..]);
    }

    public void WriteTo(Span<byte> destination)
    {
        if (destination.Length < Size) throw new ArgumentException($"A chunk id needs {Size} bytes.", nameof(destination));
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _d);
    }

    public byte[] ToArray()
    {
        var bytes = new byte[Size];
        WriteTo(bytes);
        return bytes;
    }

    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[Size];
        WriteTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    public static ChunkId Parse(string hex) =>
        TryParse(hex, out var id) ? id : throw new FormatException($"'{hex}' is not a chunk id (64 lowercase hex characters).");

    public static bool TryParse([NotNullWhen(true)] string? hex, out ChunkId id)
    {
        id = default;
        if (hex is not { Length: Size * 2 } || !hex.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f')) return false;
        Span<byte> bytes = stackalloc byte[Size];
        Convert.FromHexString(hex, bytes, out _, out _);
        id = new ChunkId(bytes);
        return true;
    }
}
