using System.Security.Cryptography;
using Backup.Storage.Crypto;
using Microsoft.Extensions.Options;

namespace Backup.Agent.Enrolling;

/// <summary>
/// The repository's master keys, unwrapped here from the server's key file with the agent's configured passphrase.
/// Argon2id runs once per key file (a passphrase change on the server gives a new file, unwrapped on the next job);
/// the keys stay in this process's memory and are never written or logged.
/// </summary>
public sealed class RepositoryKeys(IOptions<AgentOptions> options) : IDisposable
{
    private string? _keyFileHash;
    private MasterKeys? _keys;

    /// <exception cref="WrongPassphraseException">The configured passphrase does not open the key file.</exception>
    /// <exception cref="InvalidOperationException">No passphrase is configured.</exception>
    public MasterKeys Unlock(byte[] keyFile)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(keyFile));
        if (_keys is not null && hash == _keyFileHash) return _keys;
        var keys = KeyFile.FromJson(keyFile).Unlock(Passphrase());
        _keys?.Dispose();
        (_keys, _keyFileHash) = (keys, hash);
        return keys;
    }

    private string Passphrase()
    {
        var o = options.Value;
        if (!string.IsNullOrEmpty(o.PassphraseFile))
        {
            try
            {
                return File.ReadAllText(o.PassphraseFile).TrimEnd('\r', '\n');
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"The passphrase file {o.PassphraseFile} cannot be read: {e.Message}", e);
            }
        }
        if (!string.IsNullOrEmpty(o.Passphrase)) return o.Passphrase;
        throw new InvalidOperationException("No repository passphrase is configured (Agent:PassphraseFile or Agent:Passphrase); the agent cannot encrypt.");
    }

    public void Dispose() => _keys?.Dispose();
}
