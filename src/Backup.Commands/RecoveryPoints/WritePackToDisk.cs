using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.Stores;
using Backup.Storage.Contracts;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.RecoveryPoints;

/// <summary>What landed on disk: the pack's length and the chunks it holds (from its trailer).</summary>
public sealed record PackOnDisk(long Bytes, IReadOnlyList<StoredChunk> Chunks);

/// <summary>
/// An agent delivers one pack of a running job that writes packs (a backup or a synchronisation: <see cref="Kind"/>,
/// <see cref="JobId"/>). The pack is streamed from <see cref="Content"/> onto the server's disk (verified) only once the job
/// is known to be this agent's and running; its chunks join the index in the same transaction as the disk-write event.
/// </summary>
public sealed record WritePackToDisk(Guid AgentId, JobKind Kind, Guid JobId, string PackId, Stream Content) : ICommand<PackStored>;

public sealed class WritePackToDiskValidator : AbstractValidator<WritePackToDisk>
{
    public WritePackToDiskValidator() =>
        RuleFor(x => x.PackId).Matches("^[0-9a-f]{64}$").WithMessage("'PackId' must be the 64-character lowercase hex SHA-256 of the pack.");
}

public sealed class WritePackToDiskHandler(IDocumentSession session, TimeProvider clock, IDiskPacks disk) : ICommandHandler<WritePackToDisk, PackStored>
{
    // An agent uploads two packs of a run at once: in this process they take turns to record them (the disk writes
    // themselves overlap), instead of racing on the stream version and redoing the whole index insert. Striped by
    // recovery point, so nothing grows. Across several API processes the expected-version retry below still holds.
    private static readonly SemaphoreSlim[] Stripes = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1))];

    public async ValueTask<PackStored> Handle(WritePackToDisk command, CancellationToken ct)
    {
        // Guard before touching the disk: an agent that does not own this running job writes nothing.
        await DecideAsync(session, command, new PackOnDisk(0, []), ct);
        var (stored, pack) = await disk.PutAsync(command.PackId, command.Content, ct);

        var stripe = Stripes[(command.JobId.GetHashCode() & int.MaxValue) % Stripes.Length];
        await stripe.WaitAsync(ct);
        try
        {
            await RecordAsync(command, pack, ct);
            return stored;
        }
        finally
        {
            stripe.Release();
        }
    }

    /// <summary>The job's disk-write event for the pack (null: already recorded for this run) and the stream version it was decided at.</summary>
    private async Task<(object? Written, long Version)> DecideAsync(IDocumentSession s, WritePackToDisk c, PackOnDisk pack, CancellationToken ct)
    {
        var job = await s.LoadJobAsync(c.Kind, c.JobId, ct);
        return (job.RecordPack(c.AgentId, c.PackId, pack.Bytes, pack.Chunks.Count, clock.GetUtcNow()), job.Version);
    }

    private async Task<long> RecordAsync(WritePackToDisk command, PackOnDisk pack, CancellationToken ct)
    {
        // The request's session for the first attempt; a retry gets a session of its own (same correlation, causation and
        // actor), as the first one's transaction ended with the failed commit.
        var current = session;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                if (await TryRecordAsync(current, command, pack, attempt, ct) is { } bytes) return bytes;
                // Another pack of this run, or another pack indexing one of these chunks, got in first: reload and retry.
                if (!ReferenceEquals(current, session)) await current.DisposeAsync();
                current = session.DocumentStore.LightweightSession();
                current.CorrelationId = session.CorrelationId;
                current.CausationId = session.CausationId;
                if (session.GetHeader(CommandMetadata.ActorHeader) is { } actor) current.SetHeader(CommandMetadata.ActorHeader, actor);
            }
        }
        finally
        {
            if (!ReferenceEquals(current, session)) await current.DisposeAsync();
        }
    }

    /// <summary>One attempt; null when another writer got in first and the attempt should be made again.</summary>
    private async Task<long?> TryRecordAsync(IDocumentSession s, WritePackToDisk command, PackOnDisk pack, int attempt, CancellationToken ct)
    {
        // Shared with other writers, exclusive of garbage collection: the chunks found indexed below stay where they are.
        await CollectionLock.SharedAsync(s, ct);
        // Appended at the version the guard saw: a lease reaped meanwhile (JobRequeued) must not be followed by a
        // disk write of the run it took the job from. Another pack of the same run appended meanwhile is no reason
        // to refuse this one: reload, guard again, retry.
        var (written, version) = await DecideAsync(s, command, pack, ct);
        if (written is null) return pack.Bytes;

        // Index only chunks nobody holds yet: an entry is never moved to another pack (see StoredChunk).
        var ids = pack.Chunks.Select(c => c.Id).Distinct(StringComparer.Ordinal).ToArray();
        var found = await s.LoadManyAsync<StoredChunk>(ct, ids);
        var known = found.Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
        var fresh = pack.Chunks.Where(c => known.Add(c.Id)).ToArray();
        if (fresh.Length > 0) s.Insert(fresh);
        // This pack's chunks stay indexed where they are; a condemned pack holding them (or this very pack, uploaded
        // again) is needed again, so it is kept.
        var holders = found.Select(c => c.PackId).Append(command.PackId).Distinct(StringComparer.Ordinal).ToArray();
        foreach (var condemned in await s.LoadManyAsync<CondemnedPack>(ct, holders)) s.Delete(condemned);
        s.AppendExpected(command.JobId, version, written);
        try
        {
            await s.SaveChangesAsync(ct);
            return pack.Bytes;
        }
        catch (Exception e) when (attempt < 10 && (e is JasperFx.Events.EventStreamUnexpectedMaxEventIdException || e.IsUniqueViolation()))
        {
            return null;
        }
    }
}
