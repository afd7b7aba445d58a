using System.Security.Cryptography;
using System.Text;

namespace Backup.Commands.Common;

/// <summary>
/// Bearer secrets of the form "{id}.{random}". Only a SHA-256 of the random part is ever stored in events,
/// so the event log cannot be replayed into a working credential.
/// </summary>
public static class Secrets
{
    public static string NewSecret() => Base64Url(RandomNumberGenerator.GetBytes(32));

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    public static bool Matches(string secret, string expectedHash)
    {
        var actual = Encoding.ASCII.GetBytes(Hash(secret));
        var expected = Encoding.ASCII.GetBytes(expectedHash);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    public static string Compose(Guid id, string secret) => $"{id:N}.{secret}";

    public static bool TryParse(string? value, out Guid id, out string secret)
    {
        id = Guid.Empty;
        secret = "";
        if (string.IsNullOrWhiteSpace(value)) return false;
        var dot = value.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || dot == value.Length - 1) return false;
        if (!Guid.TryParseExact(value[..dot], "N", out id)) return false;
        secret = value[(dot + 1)..];
        return true;
    }

    private static string Base64Url(byte[] bytes) =>
        Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
