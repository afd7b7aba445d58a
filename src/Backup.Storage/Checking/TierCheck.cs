using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;

namespace Backup.Storage.Checking;

/// <summary>One pack that is missing or damaged on a tier, and how.</summary>
public sealed record PackProblem(string PackId, string Problem);

public sealed record TierCheckResult(int PacksChecked, long BytesChecked, IReadOnlyList<PackProblem> Damaged);

/// <summary>
/// Reads packs back from one tier and checks each against its id (SHA-256), its structure and the chunk index (where the
/// index says its chunks lie). Keyless: it proves every stored byte is the byte written. Used by the check endpoint and the
/// consistency-check worker.
/// </summary>
public static class TierCheck
{
    public static async Task<TierCheckResult> DiskAsync(
        DiskStore disk, IReadOnlyCollection<string> packs, ILookup<string, ChunkLocation> indexed, CancellationToken ct)
    {
        var damaged = new List<PackProblem>();
        long bytes = 0;
        foreach (var packId in packs)
        {
            if (!disk.HasPack(packId))
            {
                damaged.Add(new PackProblem(packId, "missing"));
                continue;
            }
            await using var file = disk.OpenPack(packId);
            bytes += file.Length;
            if (await PackCheck.ProblemAsync(file, packId, indexed[packId], ct) is { } problem) damaged.Add(new PackProblem(packId, problem));
        }
        return new TierCheckResult(packs.Count, bytes, damaged);
    }

    public static async Task<TierCheckResult> VaultAsync(
        VaultStore vault, IReadOnlyCollection<string> packs, ILookup<string, ChunkLocation> indexed, CancellationToken ct)
    {
        var damaged = new List<PackProblem>();
        long bytes = 0;
        foreach (var packId in packs)
        {
            if (await vault.PackLengthAsync(packId, ct) is null)
            {
                damaged.Add(new PackProblem(packId, "missing"));
                continue;
            }
            // Checked from a local copy: the check seeks (hash, then the trailer), a blob stream does not.
            await using var copy = new FileStream(Path.Combine(Path.GetTempPath(), $"check-{packId}-{Guid.NewGuid():N}"),
                FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
            await using (var blob = await vault.OpenPackAsync(packId, ct)) await blob.CopyToAsync(copy, 1 << 20, ct);
            bytes += copy.Length;
            if (await PackCheck.ProblemAsync(copy, packId, indexed[packId], ct) is { } problem) damaged.Add(new PackProblem(packId, problem));
        }
        return new TierCheckResult(packs.Count, bytes, damaged);
    }
}
