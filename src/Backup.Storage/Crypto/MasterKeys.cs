using System.Security.Cryptography;

namespace Backup.Storage.Crypto;

/// <summary>
/// A repository's secret keys: the AES-256-GCM data key and the keyed-BLAKE3 chunk-id key, 32 random bytes each.
/// They exist unwrapped only in memory on the premises: no property exposes them (so no serializer or logger can
/// pick them up), <see cref="ToString"/> is redacted, and <see cref="Dispose"/> wipes them.
/// </summary>
public sealed class MasterKeys : IDisposable
{
    public const int KeySize = 32;

    /// <summary>Wrapped form: encryption key || chunk-id key.</summary>
    internal const int MaterialSize = 2 * KeySize;

    private readonly byte[] _material;
    private bool _disposed;

    private MasterKeys(byte[] material) => _material = material;

    public static MasterKeys Generate() => new(RandomNumberGenerator.GetBytes(MaterialSize));

    internal static MasterKeys FromMaterial(ReadOnlySpan<byte> material)
    {
        if (material.Length != MaterialSize) throw new CryptographicException($"Master key material must be {MaterialSize} bytes.");
        return new MasterKeys(material.ToArray());
    }

    internal ReadOnlySpan<byte> Material => Alive()._material;

    public BlobCipher CreateCipher() => new(Alive()._material.AsSpan(0, KeySize));

    public ChunkIdHasher CreateChunkIdHasher() => new(Alive()._material.AsSpan(KeySize, KeySize));

    /// <summary>True when both hold the same keys (constant time).</summary>
    public bool SameKeysAs(MasterKeys other) => CryptographicOperations.FixedTimeEquals(Material, other.Material);

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_material);
        _disposed = true;
    }

    public override string ToString() => "MasterKeys(redacted)";

    private MasterKeys Alive() => _disposed ? throw new ObjectDisposedException(nameof(MasterKeys)) : this;
}
