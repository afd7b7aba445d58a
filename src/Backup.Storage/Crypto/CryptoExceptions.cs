using System.Security.Cryptography;

namespace Backup.Storage.Crypto;

/// <summary>A sealed blob failed AES-GCM authentication: its bytes were altered, truncated, or sealed with another key.</summary>
public sealed class BlobAuthenticationException(string message) : CryptographicException(message);

/// <summary>A blob decrypted, but its plaintext does not hash to the chunk id it was stored under.</summary>
public sealed class ChunkMismatchException(ChunkId expected, ChunkId actual)
    : CryptographicException($"Chunk {expected} is damaged: its content hashes to {actual}.")
{
    public ChunkId Expected { get; } = expected;
    public ChunkId Actual { get; } = actual;
}

/// <summary>The passphrase does not unlock the key file. Nothing was changed.</summary>
public sealed class WrongPassphraseException()
    : CryptographicException("Wrong passphrase: it does not unlock this repository's key file. Nothing was changed.");
