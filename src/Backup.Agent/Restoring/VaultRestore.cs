using System.Diagnostics;
using Azure.Storage.Blobs;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Backup.Storage.Vault;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.Restoring;

/// <summary>
/// Disaster recovery: restores a recovery point straight from the vault, with nothing but the vault's connection
/// string and the passphrase — no backup server, no catalog. The key file comes from the vault, the chunk index is
/// rebuilt from the packs' own trailers (ranged reads), and every pack and chunk is verified as in any restore.
/// <code>
/// Backup.Agent restore-from-vault --vault "&lt;connection string&gt;" --container &lt;name&gt; --recovery-point &lt;id&gt;
///     --target &lt;folder&gt; --passphrase-file &lt;file&gt; [--path docs/2026 --path photos/cat.jpg] [--if-exists Overwrite|Skip|KeepBoth]
/// </code>
/// Exit codes: 0 restored, 1 failed (damage, I/O), 2 bad arguments, 3 wrong passphrase.
/// </summary>
public static class VaultRestore
{
    public const string Verb = "restore-from-vault";

    public static async Task<int> RunAsync(string[] args, ILoggerFactory loggers, CancellationToken ct)
    {
        var log = loggers.CreateLogger(typeof(VaultRestore));
        var options = Parse(args, out var error);
        if (options is null)
        {
            Console.Error.WriteLine($"{Verb}: {error}");
            Console.Error.WriteLine($"usage: {Verb} --vault <connection string> --container <name> --recovery-point <id> --target <folder> --passphrase-file <file> [--path <item>]... [--if-exists Overwrite|Skip|KeepBoth]");
            return 2;
        }
        var clock = Stopwatch.StartNew();
        var vault = new VaultStore(new BlobServiceClient(options.Vault).GetBlobContainerClient(options.Container));
        var keyFile = await vault.ReadKeyFileAsync(ct);
        if (keyFile is null)
        {
            Console.Error.WriteLine($"{Verb}: the vault container {options.Container} holds no key file (keys/repository.json).");
            return 1;
        }
        MasterKeys keys;
        try
        {
            keys = KeyFile.FromJson(keyFile).Unlock(File.ReadAllText(options.PassphraseFile).TrimEnd('\r', '\n'));
        }
        catch (WrongPassphraseException)
        {
            Console.Error.WriteLine($"{Verb}: the passphrase does not open the vault's key file; nothing was restored.");
            return 3;
        }
        using (keys)
        {
            var manifestBytes = await vault.ReadManifestAsync(options.RecoveryPoint, ct);
            if (manifestBytes is null)
            {
                Console.Error.WriteLine($"{Verb}: the vault holds no recovery point {options.RecoveryPoint}.");
                return 1;
            }
            try
            {
                var manifest = Manifest.FromBytes(manifestBytes);
                var index = new Dictionary<ChunkId, ChunkLocation>();
                foreach (var packId in manifest.PackIds())
                    foreach (var entry in await vault.ReadPackIndexAsync(packId, ct))
                        index.TryAdd(entry.Id, new ChunkLocation(entry.Id.ToString(), packId, entry.Offset, entry.Length, entry.PlainLength));
                var scratch = Directory.CreateTempSubdirectory("backup-vault-restore-");
                try
                {
                    var result = await new Restorer(loggers.CreateLogger<Restorer>()).RestoreAsync(manifest, index, keys, options.Target, scratch.FullName,
                        async (packId, destination, token) =>
                        {
                            await using var pack = await vault.OpenPackAsync(packId, token);
                            await pack.CopyToAsync(destination, 1 << 20, token);
                        },
                        new RestoreOptions(options.Paths.Count == 0 ? null : options.Paths, options.IfExists), ct);
                    Console.WriteLine($"Restored {result.Files} files, {result.Bytes} bytes of recovery point {options.RecoveryPoint} to {Path.GetFullPath(options.Target)} "
                        + $"in {clock.Elapsed.TotalSeconds:F1} s; every chunk verified ({result.SkippedExisting} existing items skipped).");
                    return 0;
                }
                finally
                {
                    scratch.Delete(recursive: true);
                }
            }
            catch (Exception e) when (e is InvalidDataException or IOException or System.Security.Cryptography.CryptographicException or Azure.RequestFailedException)
            {
                log.LogError(e, "Restore from the vault failed");
                Console.Error.WriteLine($"{Verb}: {e.Message}");
                return 1;
            }
        }
    }

    private sealed record Options(string Vault, string Container, Guid RecoveryPoint, string Target, string PassphraseFile, List<string> Paths, ExistingItems IfExists);

    private static Options? Parse(string[] args, out string error)
    {
        string? vault = null, container = null, target = null, passphrase = null;
        Guid? rp = null;
        var paths = new List<string>();
        var ifExists = ExistingItems.Overwrite;
        for (var i = 1; i < args.Length; i++)
        {
            var value = i + 1 < args.Length ? args[i + 1] : null;
            if (value is null) { error = $"{args[i]} needs a value."; return null; }
            switch (args[i])
            {
                case "--vault": vault = value; break;
                case "--container": container = value; break;
                case "--target": target = value; break;
                case "--passphrase-file": passphrase = value; break;
                case "--path": paths.Add(value); break;
                case "--recovery-point":
                    if (!Guid.TryParse(value, out var id)) { error = $"--recovery-point '{value}' is not a recovery point id."; return null; }
                    rp = id;
                    break;
                case "--if-exists":
                    if (!Enum.TryParse(value, ignoreCase: false, out ifExists) || !Enum.IsDefined(ifExists)) { error = $"--if-exists '{value}' is not Overwrite, Skip or KeepBoth."; return null; }
                    break;
                default: error = $"unknown option {args[i]}."; return null;
            }
            i++;
        }
        error = vault is null ? "--vault is required." : container is null ? "--container is required." : rp is null ? "--recovery-point is required."
            : target is null ? "--target is required." : passphrase is null ? "--passphrase-file is required." : "";
        return error.Length > 0 ? null : new Options(vault!, container!, rp!.Value, target!, passphrase!, paths, ifExists);
    }
}
