using System.Security.Cryptography;

namespace Backup.Storage.Crypto;

/// <summary>
/// AES-256-GCM with a random 12-byte nonce per blob; a sealed blob is <c>nonce(12) || ciphertext || tag(16)</c>,
/// the ciphertext as long as the plaintext. A random nonce is safe for up to about 2^32 blobs per key (NIST
/// SP 800-38D), which at one blob per ~1 MiB chunk is 4 PiB of new data per repository.
/// Not thread-safe (it owns an <see cref="AesGcm"/>); give each worker its own.
/// </summary>
public sealed class BlobCipher : IDisposable
{
    public const int KeySize = 32;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int Overhead = NonceSize + TagSize;

    private readonly AesGcm _aes;

    // The allocating forms are named apart (…ToArray): a byte[] destination converts to the associated-data
    // parameter too, so overloads would silently pick the wrong one.
    public BlobCipher(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize) throw new ArgumentException($"The encryption key is {KeySize} bytes.", nameof(key));
        _aes = new AesGcm(key, TagSize);
    }

    public static int SealedLength(int plaintextLength) => checked(plaintextLength + Overhead);

    /// <summary>Seals <paramref name="plaintext"/> into <paramref name="destination"/>; returns the bytes written.</summary>
    public int Seal(ReadOnlySpan<byte> plaintext, Span<byte> destination, ReadOnlySpan<byte> associatedData = default)
    {
        var total = SealedLength(plaintext.Length);
        if (destination.Length < total) throw new ArgumentException($"The destination needs {total} bytes.", nameof(destination));
        var nonce = destination[..NonceSize];
        RandomNumberGenerator.Fill(nonce);
        _aes.Encrypt(nonce, plaintext, destination.Slice(NonceSize, plaintext.Length), destination.Slice(NonceSize + plaintext.Length, TagSize), associatedData);
        return total;
    }

    public byte[] SealToArray(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        var sealedBlob = new byte[SealedLength(plaintext.Length)];
        Seal(plaintext, sealedBlob, associatedData);
        return sealedBlob;
    }

    /// <summary>
    /// Seals in place: <paramref name="blob"/> is laid out as nonce space (12), then <paramref name="plaintextLength"/>
    /// bytes of plaintext, then tag space (16); the plaintext is encrypted where it lies. Saves a copy per blob.
    /// </summary>
    public int SealInPlace(Span<byte> blob, int plaintextLength, ReadOnlySpan<byte> associatedData = default)
    {
        var total = SealedLength(plaintextLength);
        if (blob.Length < total) throw new ArgumentException($"The blob needs {total} bytes.", nameof(blob));
        var nonce = blob[..NonceSize];
        RandomNumberGenerator.Fill(nonce);
        var text = blob.Slice(NonceSize, plaintextLength);
        _aes.Encrypt(nonce, text, text, blob.Slice(NonceSize + plaintextLength, TagSize), associatedData);
        return total;
    }

    public static int PlaintextLength(int sealedLength) =>
        sealedLength >= Overhead ? sealedLength - Overhead
            : throw new BlobAuthenticationException($"The blob is {sealedLength} bytes, shorter than the {Overhead}-byte nonce and tag: it is truncated.");

    /// <summary>Opens a sealed blob into <paramref name="destination"/>; returns the plaintext length.</summary>
    /// <exception cref="BlobAuthenticationException">The blob was altered, truncated or sealed with another key.</exception>
    public int Open(ReadOnlySpan<byte> sealedBlob, Span<byte> destination, ReadOnlySpan<byte> associatedData = default)
    {
        var length = PlaintextLength(sealedBlob.Length);
        if (destination.Length < length) throw new ArgumentException($"The destination needs {length} bytes.", nameof(destination));
        try
        {
            _aes.Decrypt(sealedBlob[..NonceSize], sealedBlob.Slice(NonceSize, length), sealedBlob.Slice(NonceSize + length, TagSize), destination[..length], associatedData);
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new BlobAuthenticationException("The blob failed authentication: it is damaged or was sealed with another key.");
        }
        return length;
    }

    public byte[] OpenToArray(ReadOnlySpan<byte> sealedBlob, ReadOnlySpan<byte> associatedData = default)
    {
        var plaintext = new byte[PlaintextLength(sealedBlob.Length)];
        Open(sealedBlob, plaintext, associatedData);
        return plaintext;
    }

    public void Dispose() => _aes.Dispose();

    public override string ToString() => "BlobCipher(key redacted)";
}
