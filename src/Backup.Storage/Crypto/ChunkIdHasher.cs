namespace Backup.Storage.Crypto;

/// <summary>
/// Chunk ids are keyed BLAKE3 (32-byte key from the repository's <see cref="MasterKeys"/>), so whoever holds
/// the packs — the backup server, the vault — cannot test whether a known file is stored by hashing it.
/// Thread-safe: every call uses a fresh hasher state.
/// </summary>
public sealed class ChunkIdHasher
{
    public const int KeySize = 32;

    private readonly byte[] _key;

    public ChunkIdHasher(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize) throw new ArgumentException($"The chunk-id key is {KeySize} bytes.", nameof(key));
        _key = key.ToArray();
    }

    public ChunkId Compute(ReadOnlySpan<byte> plaintext)
    {
        using var hasher = Blake3.Hasher.NewKeyed(_key);
        hasher.Update(plaintext);
        Span<byte> digest = stackalloc byte[ChunkId.Size];
        hasher.Finalize(digest);
        return new ChunkId(digest);
    }

    public override string ToString() => "ChunkIdHasher(key redacted)";
}
