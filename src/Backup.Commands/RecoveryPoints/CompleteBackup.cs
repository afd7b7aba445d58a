using Backup.Commands.Cataloguing;
using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.Stores;
using FluentValidation;
using Marten;
using Mediator;
using Microsoft.Extensions.Logging;

namespace Backup.Commands.RecoveryPoints;

/// <summary>The manifest as stored: its hash and the bytes the recovery point occupies on disk (its packs and the manifest).</summary>
public sealed record StoredManifest(string Sha256, long BytesStored);

/// <summary>
/// An agent commits a finished backup: its totals and every chunk it references (its files' and its tree's).
/// The handler resolves the chunks through the index into the packs that hold them (422 if any is unknown), then
/// checks those packs are on disk and stores the manifest (<see cref="IManifests"/>); only then is the recovery point
/// created. <see cref="Items"/> (every item of the tree, paths relative to the protected folder) go into the
/// <see cref="ItemCatalog"/>; an agent that sends none leaves the point out of the catalog.
/// <para><see cref="Changes"/> instead of <see cref="Items"/>: the items as changes against <see cref="ItemChanges.Base"/>, the
/// recovery point the agent catalogued last; 409 when that is not the data source's latest catalogued point or the changes do
/// not fit what the catalog holds (nothing is committed; the agent then sends every item).</para>
/// </summary>
public sealed record CompleteBackup(
    Guid AgentId, Guid RecoveryPointId, int Files, int Directories, IReadOnlyList<SkippedItemRecord> Skipped, long BytesRead,
    IReadOnlyCollection<string> ChunkIds, IReadOnlyList<string> Tree,
    IReadOnlyList<CataloguedItem>? Items = null, ItemChanges? Changes = null) : ICommand;

public sealed class CompleteBackupValidator : AbstractValidator<CompleteBackup>
{
    public CompleteBackupValidator()
    {
        RuleFor(x => x.Files).GreaterThanOrEqualTo(0);
        RuleFor(x => x.Directories).GreaterThanOrEqualTo(0);
        RuleFor(x => x.Skipped).NotNull();
        RuleForEach(x => x.Skipped).ChildRules(item =>
        {
            item.RuleFor(i => i.Path).NotEmpty().MaximumLength(8_192);
            item.RuleFor(i => i.Reason).NotEmpty().MaximumLength(2_000);
        });
        RuleFor(x => x.BytesRead).GreaterThanOrEqualTo(0);
        RuleFor(x => x.ChunkIds).NotEmpty();
        // A commit lists tens of thousands of chunk ids and items: one plain pass over each (see CheckItems).
        RuleFor(x => x.ChunkIds).Custom(ChunkIdRules.EachIsAChunkId);
        RuleFor(x => x.Items).Custom((items, context) => CheckItems(items, "Items", context));
        RuleFor(x => x).Must(x => x.Items is null || x.Changes is null).WithName("ItemChanges")
            .WithMessage("Send the items either whole ('items') or as changes ('itemChanges'), not both.");
        RuleFor(x => x.Changes!.Added).Custom((items, context) =>
        {
            if (items is null) context.AddFailure("ItemChanges.Added", "The added items must be a list (empty when none).");
            else CheckItems(items, "ItemChanges.Added", context);
        }).When(x => x.Changes is not null);
        RuleFor(x => x.Changes!.Removed).Custom((paths, context) =>
        {
            if (paths is null)
            {
                context.AddFailure("ItemChanges.Removed", "The removed paths must be a list (empty when none).");
                return;
            }
            var seen = new HashSet<string>(paths.Count, StringComparer.Ordinal);
            var failures = 0;
            for (var i = 0; i < paths.Count && failures < MaxFailures; i++)
            {
                if (string.IsNullOrEmpty(paths[i]) || paths[i].Length > 8_192 || !IsRelativePath(paths[i]))
                {
                    failures++;
                    context.AddFailure($"ItemChanges.Removed[{i}]", RelativePathRule);
                }
                else if (!seen.Add(paths[i]))
                {
                    failures++;
                    context.AddFailure($"ItemChanges.Removed[{i}]", $"Each removed path must appear once; '{ChunkIdRules.Shorten(paths[i])}' is repeated.");
                }
            }
        }).When(x => x.Changes is not null);
    }

    private const int MaxFailures = ChunkIdRules.MaxFailures;

    private const string RelativePathRule =
        "An item's path must be relative to the protected folder, with '/' between non-empty names and no '.' or '..' (8,192 characters at most).";

    /// <summary>
    /// One plain pass over tens of thousands of items, not a child validator per element (which took ~170 ms for 22,000):
    /// failures still name the element, e.g. Items[3].Path, the first <see cref="MaxFailures"/> of them.
    /// </summary>
    private static void CheckItems(IReadOnlyList<CataloguedItem>? items, string property, ValidationContext<CompleteBackup> context)
    {
        if (items is null) return;
        var paths = new HashSet<string>(items.Count, StringComparer.Ordinal);
        var failures = 0;
        void Fail(string name, string message)
        {
            if (failures++ < MaxFailures) context.AddFailure(name, message);
        }
        for (var i = 0; i < items.Count && failures < MaxFailures; i++)
        {
            var item = items[i];
            if (item is null)
            {
                Fail($"{property}[{i}]", "An item must not be null.");
                continue;
            }
            if (string.IsNullOrEmpty(item.Path) || item.Path.Length > 8_192 || !IsRelativePath(item.Path))
                Fail($"{property}[{i}].Path", RelativePathRule);
            else if (!paths.Add(item.Path))
                Fail($"{property}[{i}].Path", $"Each item's path must appear once; '{ChunkIdRules.Shorten(item.Path)}' is repeated.");
            if (!Enum.IsDefined(item.Kind)) Fail($"{property}[{i}].Kind", $"'{item.Kind}' is not an item kind.");
            if (item.Size < 0) Fail($"{property}[{i}].Size", "An item's size must not be negative.");
        }
    }

    /// <summary>Names between single slashes, none empty, "." or "..".</summary>
    private static bool IsRelativePath(string path)
    {
        var start = 0;
        while (start <= path.Length)
        {
            var end = path.IndexOf('/', start);
            if (end < 0) end = path.Length;
            var name = path.AsSpan(start, end - start);
            if (name.IsEmpty || name is "." || name is "..") return false;
            start = end + 1;
        }
        return true;
    }
}

public sealed class CompleteBackupHandler(IDocumentSession session, TimeProvider clock, IManifests manifests, ILogger<CompleteBackupHandler> log)
    : ICommandHandler<CompleteBackup>
{
    public async ValueTask<Unit> Handle(CompleteBackup c, CancellationToken ct)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        // Until this commit ends, garbage collection neither decides nor deletes: the packs resolved below stay on disk.
        await CollectionLock.SharedAsync(session, ct);
        var (rp, version) = await session.LoadAsync<RecoveryPoint>(c.RecoveryPointId, RecoveryPoint.Next, ct);
        JobLifecycle.Running(rp, c.RecoveryPointId, c.AgentId); // owned by this agent and running, before any work

        var packIds = await ChunkIndex.PacksToKeepAsync(session, c.ChunkIds, "backup", ct);
        var resolved = watch.Elapsed;
        var stored = await manifests.PutAsync(c.RecoveryPointId, c.Tree, packIds, ct);
        var now = clock.GetUtcNow();
        var events = RecoveryPoint.Commit(rp, c.RecoveryPointId, c.AgentId, c.Files, c.Directories, c.Skipped, c.BytesRead,
            packIds, stored.BytesStored, stored.Sha256, now);
        IReadOnlyList<ItemsCatalogued> catalog = [];
        if (c.Changes is not null)
            catalog = await ItemCatalog.CatalogueChangesAsync(session, c.RecoveryPointId, rp!.DataSourceId, rp.SourcePath, now, c.Changes, ct);
        else if (c.Items is not null)
            catalog = await ItemCatalog.CatalogueAsync(session, c.RecoveryPointId, rp!.DataSourceId, rp.SourcePath, now, c.Items, ct);
        var catalogued = watch.Elapsed;
        session.AppendExpected(c.RecoveryPointId, version, events);
        // In the same transaction: the catalog stream is started once, by the commit that the expected version lets through.
        if (catalog.Count > 0) session.Events.StartStream(ItemCatalog.StreamId(c.RecoveryPointId), catalog.ToArray<object>());
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException($"Backup {c.RecoveryPointId} changed while it was being committed.");
        }
        log.LogInformation("Backup {RecoveryPointId} committed in {Ms:F0} ms: {Chunks} chunk ids in {Packs} packs resolved in {ResolveMs:F0} ms, "
            + "{Items} items catalogued in {CatalogMs:F0} ms, saved in {SaveMs:F0} ms",
            c.RecoveryPointId, watch.Elapsed.TotalMilliseconds, c.ChunkIds.Count, packIds.Count, resolved.TotalMilliseconds,
            c.Changes is { } changes ? $"{changes.Added.Count} added and {changes.Removed.Count} removed" : $"{c.Items?.Count ?? 0}",
            (catalogued - resolved).TotalMilliseconds, (watch.Elapsed - catalogued).TotalMilliseconds);
        return Unit.Value;
    }
}

/// <summary>The check of a commit's chunk ids (tens of thousands): one plain pass, not a rule per element.</summary>
public static class ChunkIdRules
{
    /// <summary>Enough failures to show what is wrong, without a response as long as the request.</summary>
    public const int MaxFailures = 20;

    /// <summary>Names each id that is not 64 lowercase hex as ChunkIds[i], the first <see cref="MaxFailures"/> of them.</summary>
    public static void EachIsAChunkId<T>(IReadOnlyCollection<string>? ids, ValidationContext<T> context)
    {
        int i = 0, failures = 0;
        foreach (var id in ids ?? [])
        {
            if (!IsChunkId(id) && failures++ < MaxFailures) context.AddFailure($"ChunkIds[{i}]", $"'{Shorten(id)}' is not a chunk id (64 lowercase hex).");
            i++;
        }
    }

    private static bool IsChunkId(string? id)
    {
        if (id is not { Length: 64 }) return false;
        foreach (var ch in id)
            if (!char.IsAsciiDigit(ch) && ch is not (>= 'a' and <= 'f')) return false;
        return true;
    }

    public static string Shorten(string? value) => value is null ? "null" : value.Length <= 80 ? value : value[..80] + "…";
}
