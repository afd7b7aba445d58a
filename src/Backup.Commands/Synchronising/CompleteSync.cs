using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Stores;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Synchronising;

/// <summary>
/// An agent ends a synchronisation: its totals and every chunk its tree references (files' and the tree's own). The handler
/// resolves the chunks into the packs holding them (422 if any is unknown) and checks those are on the server's disk
/// (<see cref="IDiskPacks"/>), measuring their bytes; then <see cref="ReplicaSynchronised"/> records them. No manifest, no recovery point.
/// </summary>
public sealed record CompleteSync(
    Guid AgentId, Guid SyncId, int Files, int Directories, int SkippedItems, long BytesRead, IReadOnlyCollection<string> ChunkIds) : ICommand;

public sealed class CompleteSyncValidator : AbstractValidator<CompleteSync>
{
    public CompleteSyncValidator()
    {
        RuleFor(x => x.Files).GreaterThanOrEqualTo(0);
        RuleFor(x => x.Directories).GreaterThanOrEqualTo(0);
        RuleFor(x => x.SkippedItems).GreaterThanOrEqualTo(0);
        RuleFor(x => x.BytesRead).GreaterThanOrEqualTo(0);
        RuleFor(x => x.ChunkIds).NotEmpty();
        RuleFor(x => x.ChunkIds).Custom(RecoveryPoints.ChunkIdRules.EachIsAChunkId);
    }
}

public sealed class CompleteSyncHandler(IDocumentSession session, TimeProvider clock, IDiskPacks disk) : ICommandHandler<CompleteSync>
{
    public async ValueTask<Unit> Handle(CompleteSync c, CancellationToken ct)
    {
        // As a backup's commit: garbage collection waits until this ends, so the packs resolved below stay on disk.
        await CollectionLock.SharedAsync(session, ct);
        var (sync, version) = await session.LoadAsync<Synchronisation>(c.SyncId, Synchronisation.Next, ct);
        JobLifecycle.Running(sync, c.SyncId, c.AgentId); // owned by this agent and running, before any work

        var packIds = await ChunkIndex.PacksToKeepAsync(session, c.ChunkIds, "synchronisation", ct);
        var bytes = disk.MeasurePresent(packIds, "synchronised");
        session.AppendExpected(c.SyncId, version,
            Synchronisation.Complete(sync, c.SyncId, c.AgentId, c.Files, c.Directories, c.SkippedItems, c.BytesRead, packIds, bytes, clock.GetUtcNow()));
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException($"Synchronisation {c.SyncId} changed while it was being completed.");
        }
        return Unit.Value;
    }
}
