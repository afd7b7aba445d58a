using Backup.Commands.Cataloguing;
using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.TakingRecoveryPoints;

/// <summary>The manifest as stored: its hash and the bytes the recovery point occupies on disk (its packs and the manifest).</summary>
public sealed record StoredManifest(string Sha256, long BytesStored);

/// <summary>
/// An agent commits a finished backup: its totals and every chunk it references (its files' and its tree's).
/// The handler resolves the chunks through the index into the packs that hold them (422 if any is unknown), then
/// <see cref="PersistManifest"/> checks those packs are on disk and stores the manifest; only then is the recovery
/// point created. <see cref="Items"/> (every item of the tree, paths relative to the protected folder) go into the
/// <see cref="ItemCatalog"/>; an agent that sends none leaves the point out of the catalog.
/// </summary>
public sealed record CompleteBackup(
    Guid AgentId, Guid RecoveryPointId, int Files, int Directories, IReadOnlyList<SkippedItemRecord> Skipped, long BytesRead,
    IReadOnlyCollection<string> ChunkIds, Func<IReadOnlyList<string>, CancellationToken, Task<StoredManifest>> PersistManifest,
    IReadOnlyList<CataloguedItem>? Items = null) : ICommand;

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
        RuleForEach(x => x.ChunkIds).Matches("^[0-9a-f]{64}$");
        RuleForEach(x => x.Items).ChildRules(item =>
        {
            item.RuleFor(i => i.Path).NotEmpty().MaximumLength(8_192)
                .Must(p => !p.StartsWith('/') && !p.EndsWith('/') && p.Split('/').All(part => part is not ("" or "." or "..")))
                .WithMessage("An item's path must be relative to the protected folder, with '/' between non-empty names and no '.' or '..'.");
            item.RuleFor(i => i.Kind).IsInEnum();
            item.RuleFor(i => i.Size).GreaterThanOrEqualTo(0);
        });
        RuleFor(x => x.Items).Must(items => items!.Select(i => i.Path).Distinct(StringComparer.Ordinal).Count() == items!.Count)
            .When(x => x.Items is not null).WithMessage("Each item's path must appear once.");
    }
}

public sealed class CompleteBackupHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<CompleteBackup>
{
    public async ValueTask<Unit> Handle(CompleteBackup c, CancellationToken ct)
    {
        // Until this commit ends, garbage collection neither decides nor deletes: the packs resolved below stay on disk.
        await CollectionLock.SharedAsync(session, ct);
        var (rp, version) = await session.LoadAsync<RecoveryPoint>(c.RecoveryPointId, RecoveryPoint.Next, ct);
        RecoveryPoint.RenewLease(rp, c.RecoveryPointId, c.AgentId); // owned by this agent and running, before any work

        var packIds = await ChunkIndex.PacksToKeepAsync(session, c.ChunkIds, "backup", ct);
        var stored = await c.PersistManifest(packIds, ct);
        var now = clock.GetUtcNow();
        var events = RecoveryPoint.Commit(rp, c.RecoveryPointId, c.AgentId, c.Files, c.Directories, c.Skipped, c.BytesRead,
            packIds, stored.BytesStored, stored.Sha256, now);
        if (c.Items is not null)
            events = [.. events, .. await ItemCatalog.CatalogueAsync(session, c.RecoveryPointId, rp!.DataSourceId, rp.SourcePath, now, c.Items, ct)];
        session.AppendExpected(c.RecoveryPointId, version, events);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException($"Backup {c.RecoveryPointId} changed while it was being committed.");
        }
        return Unit.Value;
    }
}
