using System.Diagnostics;
using System.Security.Cryptography;
using Backup.Agent.Restoring;
using Backup.Storage.Blobs;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Microsoft.Extensions.Logging;

namespace Backup.Agent.Offline;

/// <summary>
/// One-shot commands that read a repository directly, with nothing but its location and the passphrase — no backup
/// server, no catalog (disaster recovery, audits):
/// <code>
/// Backup.Agent restore-from-vault --vault "&lt;connection string&gt;" --container &lt;name&gt; | --disk-store &lt;folder&gt;
///     --recovery-point &lt;id&gt; --target &lt;folder&gt; --passphrase-file &lt;file&gt; [--path &lt;item&gt;]... [--if-exists Overwrite|Skip|KeepBoth]
/// Backup.Agent check --vault "&lt;connection string&gt;" --container &lt;name&gt; | --disk-store &lt;folder&gt;
///     --passphrase-file &lt;file&gt; [--recovery-point &lt;id&gt;] [--deep]
/// </code>
/// The key file comes from the repository, the chunk index from the packs' own trailers. Exit codes: 0 done and
/// sound, 1 failed or damage found, 2 bad arguments, 3 wrong passphrase.
/// </summary>
public static class OfflineCommands
{
    public const string RestoreVerb = "restore-from-vault";
    public const string CheckVerb = "check";

    public static bool Handles(string[] args) => args.Length > 0 && args[0] is RestoreVerb or CheckVerb;

    public static async Task<int> RunAsync(string[] args, ILoggerFactory loggers, CancellationToken ct)
    {
        var options = Options.Parse(args, out var error);
        if (options is null)
        {
            Console.Error.WriteLine($"{args[0]}: {error}");
            Console.Error.WriteLine($"usage: {RestoreVerb} (--vault <connection string> --container <name> | --disk-store <folder>) --recovery-point <id> --target <folder> "
                + "--passphrase-file <file> [--path <item>]... [--if-exists Overwrite|Skip|KeepBoth]");
            Console.Error.WriteLine($"       {CheckVerb} (--vault <connection string> --container <name> | --disk-store <folder>) --passphrase-file <file> [--recovery-point <id>] [--deep]");
            return 2;
        }
        try
        {
            var repository = options.DiskStore is { } disk ? OfflineRepository.Disk(disk) : OfflineRepository.Vault(options.Vault!, options.Container!);
            var keyFile = await repository.KeyFileAsync(ct);
            if (keyFile is null)
            {
                Console.Error.WriteLine($"{args[0]}: the {repository.Name} holds no key file (keys/repository.json).");
                return 1;
            }
            MasterKeys keys;
            try
            {
                keys = KeyFile.FromJson(keyFile).Unlock(File.ReadAllText(options.PassphraseFile).TrimEnd('\r', '\n'));
            }
            catch (WrongPassphraseException)
            {
                Console.Error.WriteLine($"{args[0]}: the passphrase does not open the key file of the {repository.Name}; nothing was read.");
                return 3;
            }
            using (keys)
            {
                return options.Verb == RestoreVerb
                    ? await RestoreAsync(repository, keys, options, loggers, ct)
                    : await CheckAsync(repository, keys, options, ct);
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or CryptographicException or Azure.RequestFailedException)
        {
            loggers.CreateLogger(typeof(OfflineCommands)).LogError(e, "{Verb} failed", args[0]);
            Console.Error.WriteLine($"{args[0]}: {e.Message}");
            return 1;
        }
    }

    private static async Task<Dictionary<ChunkId, ChunkLocation>> IndexAsync(OfflineRepository repository, IEnumerable<string> packs, CancellationToken ct)
    {
        var index = new Dictionary<ChunkId, ChunkLocation>();
        foreach (var packId in packs)
            foreach (var entry in await repository.PackIndexAsync(packId, ct))
                index.TryAdd(entry.Id, ChunkLocation.Of(packId, entry));
        return index;
    }

    private static async Task<int> RestoreAsync(OfflineRepository repository, MasterKeys keys, Options options, ILoggerFactory loggers, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var rp = options.RecoveryPoint!.Value;
        var manifestBytes = await repository.ManifestAsync(rp, ct);
        if (manifestBytes is null)
        {
            Console.Error.WriteLine($"{RestoreVerb}: the {repository.Name} holds no recovery point {rp}.");
            return 1;
        }
        var manifest = Manifest.FromBytes(manifestBytes);
        var index = await IndexAsync(repository, manifest.PackIds(), ct);
        var scratch = Directory.CreateTempSubdirectory("backup-offline-restore-");
        try
        {
            var result = await new Restorer(loggers.CreateLogger<Restorer>()).RestoreAsync(manifest, index, keys, options.Target!, scratch.FullName,
                (packId, destination, token) => repository.CopyPackAsync(packId, destination, token),
                new RestoreOptions(options.Paths.Count == 0 ? null : options.Paths, options.IfExists), ct);
            Console.WriteLine($"Restored {result.Files} files, {result.Bytes} bytes of recovery point {rp} from the {repository.Name} to "
                + $"{Path.GetFullPath(options.Target!)} in {clock.Elapsed.TotalSeconds:F1} s; every chunk verified ({result.SkippedExisting} existing items skipped).");
            if (result.Failed is not { Count: > 0 } failed) return 0;
            // The rest is restored; a script must still learn that some items are not.
            foreach (var item in failed) Console.Error.WriteLine($"{RestoreVerb}: not restored: {item.Path}: {item.Reason}");
            Console.Error.WriteLine($"{RestoreVerb}: {failed.Count} items could not be written; everything else was restored.");
            return 4;
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Every pack of the selected recovery points: present, its bytes hashing to its id, a sound trailer; every tree
    /// decrypted and every chunk it references present in the packs. With --deep, every blob of those packs is also
    /// decrypted and checked against its id (like restic check --read-data). Reports each damaged pack, chunk and item.
    /// </summary>
    private static async Task<int> CheckAsync(OfflineRepository repository, MasterKeys keys, Options options, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var points = new List<Guid>();
        if (options.RecoveryPoint is { } one) points.Add(one);
        else await foreach (var id in repository.RecoveryPointsAsync(ct)) points.Add(id);

        var problems = new List<string>();
        var manifests = new Dictionary<Guid, Manifest>();
        foreach (var rp in points)
        {
            var bytes = await repository.ManifestAsync(rp, ct);
            if (bytes is null) { problems.Add($"recovery point {rp}: no manifest"); continue; }
            try
            {
                var manifest = Manifest.FromBytes(bytes);
                var invalid = manifest.Validate();
                if (invalid.Count > 0) problems.Add($"recovery point {rp}: damaged manifest: {string.Join(" ", invalid)}");
                else manifests[rp] = manifest;
            }
            catch (InvalidDataException e)
            {
                problems.Add($"recovery point {rp}: damaged manifest: {e.Message}");
            }
        }

        // Packs: each once, whichever recovery points share it.
        var index = new Dictionary<ChunkId, ChunkLocation>();
        var badPacks = new HashSet<string>(StringComparer.Ordinal);
        using var envelope = new BlobEnvelope(keys);
        var plain = GC.AllocateUninitializedArray<byte>(Pack.MaxPlainLength);
        long bytesRead = 0, chunksOpened = 0;
        var packs = manifests.Values.SelectMany(m => m.PackIds()).Distinct(StringComparer.Ordinal).ToList();
        // Tree chunks are opened while their pack is at hand, so no pack is fetched twice.
        var treeChunks = manifests.Values.SelectMany(m => m.Tree).Select(ChunkId.Parse).ToHashSet();
        var treePlain = new Dictionary<ChunkId, byte[]>();
        foreach (var packId in packs)
        {
            if (!await repository.HasPackAsync(packId, ct)) { Bad(packId, "missing"); continue; }
            var file = Path.Combine(Path.GetTempPath(), $"backup-check-{packId}-{Guid.NewGuid():N}");
            try
            {
                await using var copy = new FileStream(file, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
                await repository.CopyPackAsync(packId, copy, ct);
                bytesRead += copy.Length;
                var problem = await PackCheck.ProblemAsync(copy, packId, [], ct);
                if (problem is not null) { Bad(packId, problem); continue; }
                // The blob last opened: the chunks of a group share one, opened once.
                long openedAt = -1;
                var opened = 0;
                Exception? openFailure = null;
                foreach (var entry in Pack.ReadIndex(copy))
                {
                    index.TryAdd(entry.Id, ChunkLocation.Of(packId, entry));
                    var isTree = treeChunks.Contains(entry.Id) && !treePlain.ContainsKey(entry.Id);
                    if (!options.Deep && !isTree) continue;
                    try
                    {
                        if (entry.Offset != openedAt)
                        {
                            (openedAt, openFailure) = (entry.Offset, null);
                            var blob = new byte[entry.Length];
                            RandomAccess.Read(copy.SafeFileHandle, blob, entry.Offset);
                            try
                            {
                                opened = envelope.OpenBlob(blob, plain, $"Chunk {entry.Id}");
                            }
                            catch (Exception e) when (e is CryptographicException or InvalidDataException)
                            {
                                openFailure = e;
                            }
                        }
                        if (openFailure is not null) throw openFailure;
                        if ((long)entry.PlainOffset + entry.PlainLength > opened)
                            throw new InvalidDataException($"its blob holds {opened} bytes, not the {entry.PlainOffset}+{entry.PlainLength} the trailer says");
                        var chunk = plain.AsSpan(entry.PlainOffset, entry.PlainLength);
                        envelope.Verify(chunk, entry.Id);
                        if (isTree) treePlain[entry.Id] = chunk.ToArray();
                        if (options.Deep) chunksOpened++;
                    }
                    catch (Exception e) when (e is CryptographicException or InvalidDataException)
                    {
                        Bad(packId, $"chunk {entry.Id}: {e.Message}");
                    }
                }
            }
            finally
            {
                if (File.Exists(file)) File.Delete(file);
            }
        }

        // Trees: decrypt each and make sure every chunk it needs is in a sound pack.
        foreach (var (rp, manifest) in manifests)
        {
            var treeIds = manifest.Tree.Select(ChunkId.Parse).ToList();
            if (treeIds.Any(id => !treePlain.ContainsKey(id) || badPacks.Contains(index[id].PackId)))
            {
                problems.Add($"recovery point {rp}: its tree is in a missing or damaged pack");
                continue;
            }
            Tree tree;
            try
            {
                tree = Tree.FromBytes(treeIds.SelectMany(id => treePlain[id]).ToArray());
            }
            catch (InvalidDataException e)
            {
                problems.Add($"recovery point {rp}: its tree cannot be read: {e.Message}");
                continue;
            }
            var damaged = tree.Entries.Where(e => (e.Chunks ?? []).Any(c =>
                !index.TryGetValue(ChunkId.Parse(c), out var l) || badPacks.Contains(l.PackId))).Select(e => e.Path).ToList();
            if (damaged.Count > 0)
                problems.Add($"recovery point {rp}: {damaged.Count} file(s) need missing or damaged chunks, e.g. {string.Join(", ", damaged.Take(3))}");
        }

        foreach (var line in problems) Console.WriteLine(line);
        Console.WriteLine($"Checked {manifests.Count} recovery point(s), {packs.Count} pack(s), {bytesRead} bytes"
            + (options.Deep ? $", {chunksOpened} chunks decrypted and verified" : "") + $" in the {repository.Name} in {clock.Elapsed.TotalSeconds:F1} s: "
            + (problems.Count == 0 ? "no damage found." : $"{problems.Count} problem(s)."));
        return problems.Count == 0 ? 0 : 1;

        void Bad(string packId, string problem)
        {
            badPacks.Add(packId);
            problems.Add($"pack {packId}: {problem}");
        }
    }

    private sealed record Options(
        string Verb, string? Vault, string? Container, string? DiskStore, Guid? RecoveryPoint, string? Target, string PassphraseFile,
        List<string> Paths, ExistingItems IfExists, bool Deep)
    {
        public static Options? Parse(string[] args, out string error)
        {
            string? vault = null, container = null, disk = null, target = null, passphrase = null;
            Guid? rp = null;
            var paths = new List<string>();
            var ifExists = ExistingItems.Overwrite;
            var deep = false;
            var verb = args[0];
            for (var i = 1; i < args.Length; i++)
            {
                if (args[i] == "--deep" && verb == CheckVerb) { deep = true; continue; }
                var value = i + 1 < args.Length ? args[i + 1] : null;
                if (value is null) { error = $"{args[i]} needs a value."; return null; }
                switch (args[i])
                {
                    case "--vault": vault = value; break;
                    case "--container": container = value; break;
                    case "--disk-store": disk = value; break;
                    case "--target" when verb == RestoreVerb: target = value; break;
                    case "--passphrase-file": passphrase = value; break;
                    case "--path" when verb == RestoreVerb: paths.Add(value); break;
                    case "--recovery-point":
                        if (!Guid.TryParse(value, out var id)) { error = $"--recovery-point '{value}' is not a recovery point id."; return null; }
                        rp = id;
                        break;
                    case "--if-exists" when verb == RestoreVerb:
                        if (!Enum.TryParse(value, ignoreCase: false, out ifExists) || !Enum.IsDefined(ifExists))
                        {
                            error = $"--if-exists '{value}' is not Overwrite, Skip or KeepBoth.";
                            return null;
                        }
                        break;
                    default: error = $"unknown option {args[i]}."; return null;
                }
                i++;
            }
            error = (vault, container, disk) switch
            {
                (null, null, null) => "say where the repository is: --vault and --container, or --disk-store.",
                (not null, not null, null) or (null, null, not null) => "",
                _ => "give either --vault with --container, or --disk-store.",
            };
            if (error.Length == 0 && passphrase is null) error = "--passphrase-file is required.";
            if (error.Length == 0 && verb == RestoreVerb && rp is null) error = "--recovery-point is required.";
            if (error.Length == 0 && verb == RestoreVerb && target is null) error = "--target is required.";
            return error.Length > 0 ? null : new Options(verb, vault, container, disk, rp, target, passphrase!, paths, ifExists, deep);
        }
    }
}
