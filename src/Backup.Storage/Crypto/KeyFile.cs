using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NSec.Cryptography;

namespace Backup.Storage.Crypto;

/// <summary>Argon2id cost; the defaults are the repository standard (64 MiB, 3 passes, 1 lane: ~0.2 s here).</summary>
public sealed record KdfParameters(
    [property: JsonPropertyName("algorithm")] string Algorithm,
    [property: JsonPropertyName("memoryKiB")] long MemoryKiB,
    [property: JsonPropertyName("passes")] long Passes,
    [property: JsonPropertyName("parallelism")] int Parallelism)
{
    public const string Argon2id = "argon2id";

    public static KdfParameters Default { get; } = new(Argon2id, 64 * 1024, 3, 1);

    /// <summary>Bounds a key file must respect; checked before deriving so a hostile file cannot make us allocate gigabytes.</summary>
    internal void Validate()
    {
        if (Algorithm != Argon2id) throw new InvalidDataException($"Unknown key derivation '{Algorithm}'; only '{Argon2id}' is supported.");
        if (MemoryKiB is < 8 * 1024 or > 4 * 1024 * 1024) throw new InvalidDataException($"Argon2id memory {MemoryKiB} KiB is outside 8 MiB..4 GiB.");
        if (Passes is < 1 or > 64) throw new InvalidDataException($"Argon2id passes {Passes} is outside 1..64.");
        if (Parallelism != 1) throw new InvalidDataException($"Argon2id parallelism {Parallelism} is not supported (libsodium runs one lane).");
    }
}

/// <summary>
/// The repository key file (JSON, docs/format.md "Key file"): the <see cref="MasterKeys"/> sealed with AES-256-GCM
/// under a key derived by Argon2id from the passphrase. It holds no secret in the clear, so it is stored on the
/// backup server and in the vault; with the passphrase alone a second server can open the vault. Instances are
/// immutable: <see cref="Rewrap"/> returns a new file and leaves this one as it was.
/// </summary>
public sealed record KeyFile(
    [property: JsonPropertyName("version")] int Version,
    [property: JsonPropertyName("kdf")] KdfParameters Kdf,
    [property: JsonPropertyName("salt")] string Salt,
    [property: JsonPropertyName("wrappedKeys")] string WrappedKeys)
{
    public const int CurrentVersion = 1;
    public const int MinPassphraseLength = 16;
    public const int SaltSize = 16;

    /// <summary>Associated data of the wrap, so a wrapped blob cannot be passed off as some other kind of blob.</summary>
    private static readonly byte[] WrapContext = "backup-keyfile-v1"u8.ToArray();

    private static readonly System.Text.Json.Serialization.Metadata.JsonTypeInfo<KeyFile> Json =
        new Contracts.DocumentJson(new JsonSerializerOptions { WriteIndented = true }).KeyFile;

    /// <summary>Makes fresh random master keys and the key file that wraps them. Derives once.</summary>
    public static KeyFile Create(string passphrase, out MasterKeys keys, KdfParameters? kdf = null)
    {
        keys = MasterKeys.Generate();
        try
        {
            return Wrap(keys, passphrase, kdf ?? KdfParameters.Default);
        }
        catch
        {
            keys.Dispose();
            throw;
        }
    }

    /// <summary>Wraps existing master keys under a passphrase. Derives once.</summary>
    public static KeyFile Wrap(MasterKeys keys, string passphrase, KdfParameters? kdf = null)
    {
        ArgumentNullException.ThrowIfNull(keys);
        kdf ??= KdfParameters.Default;
        ValidatePassphrase(passphrase);
        kdf.Validate();
        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        var kek = Derive(passphrase, salt, kdf);
        try
        {
            using var cipher = new BlobCipher(kek);
            var wrapped = cipher.SealToArray(keys.Material, WrapContext);
            return new KeyFile(CurrentVersion, kdf, Convert.ToBase64String(salt), Convert.ToBase64String(wrapped));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(kek);
        }
    }

    /// <summary>Unwraps the master keys. Derives once.</summary>
    /// <exception cref="WrongPassphraseException">The passphrase does not open this file.</exception>
    public MasterKeys Unlock(string passphrase)
    {
        ArgumentNullException.ThrowIfNull(passphrase);
        if (Version != CurrentVersion) throw new InvalidDataException($"Unsupported key file version {Version}; this build reads version {CurrentVersion}.");
        if (Kdf is null || Salt is null || WrappedKeys is null) throw new InvalidDataException("The key file lacks kdf, salt or wrappedKeys.");
        Kdf.Validate();
        var salt = Decode(Salt, "salt");
        if (salt.Length != SaltSize) throw new InvalidDataException($"The key file's salt must be {SaltSize} bytes.");
        var wrapped = Decode(WrappedKeys, "wrappedKeys");
        if (wrapped.Length != BlobCipher.SealedLength(MasterKeys.MaterialSize)) throw new InvalidDataException("The key file's wrapped keys have the wrong length.");

        var kek = Derive(passphrase, salt, Kdf);
        var material = new byte[MasterKeys.MaterialSize];
        try
        {
            using var cipher = new BlobCipher(kek);
            cipher.Open(wrapped, material, WrapContext);
            return MasterKeys.FromMaterial(material);
        }
        catch (BlobAuthenticationException)
        {
            // A wrong passphrase and a damaged file look the same to AES-GCM; the passphrase is by far the likelier.
            throw new WrongPassphraseException();
        }
        finally
        {
            CryptographicOperations.ZeroMemory(kek);
            CryptographicOperations.ZeroMemory(material);
        }
    }

    /// <summary>
    /// The same master keys under a new passphrase (new salt, same KDF cost), so no stored data is rewritten.
    /// Throws <see cref="WrongPassphraseException"/> without producing anything when the old passphrase is wrong.
    /// </summary>
    public KeyFile Rewrap(string oldPassphrase, string newPassphrase)
    {
        ValidatePassphrase(newPassphrase);
        using var keys = Unlock(oldPassphrase);
        return Wrap(keys, newPassphrase, Kdf);
    }

    public static void ValidatePassphrase(string? passphrase)
    {
        ArgumentNullException.ThrowIfNull(passphrase);
        // Counted in Unicode scalar values of the NFC form (what is derived from), so "ü" is one character
        // however it was typed, and an emoji is one, not two UTF-16 units.
        var length = passphrase.Normalize(NormalizationForm.FormC).EnumerateRunes().Count();
        if (length < MinPassphraseLength)
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"The passphrase must be at least {MinPassphraseLength} characters long (it has {length})."),
                nameof(passphrase));
        if (string.IsNullOrWhiteSpace(passphrase))
            throw new ArgumentException("The passphrase must not be only white space.", nameof(passphrase));
    }

    public byte[] ToJsonBytes() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    public static KeyFile FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, Json) ?? throw new InvalidDataException("The key file is empty.");

    private static byte[] Derive(string passphrase, byte[] salt, KdfParameters kdf)
    {
        var algorithm = PasswordBasedKeyDerivationAlgorithm.Argon2id(new Argon2Parameters
        {
            DegreeOfParallelism = kdf.Parallelism,
            MemorySize = kdf.MemoryKiB,
            NumberOfPasses = kdf.Passes,
        });
        var passwordBytes = Encoding.UTF8.GetBytes(passphrase.Normalize(NormalizationForm.FormC));
        try
        {
            return algorithm.DeriveBytes(passwordBytes, salt, BlobCipher.KeySize);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(passwordBytes);
        }
    }

    private static byte[] Decode(string base64, string field)
    {
        try
        {
            return Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            throw new InvalidDataException($"The key file's {field} is not base64.");
        }
    }
}
