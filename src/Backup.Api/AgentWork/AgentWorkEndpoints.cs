using System.Security.Claims;
using Backup.Api.Infrastructure;
using Backup.Commands.CollectingGarbage;
using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.Repository;
using Backup.Commands.Restores;
using Backup.Commands.Restoring;
using Backup.Commands.TakingRecoveryPoints;
using Backup.Storage.Contracts;
using Backup.Storage.Crypto;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Backup.Api.AgentWork;

/// <summary>What agents call: their job queue, pack and manifest upload into the disk store, and restore reads.</summary>
public static class AgentWorkEndpoints
{
    public static IEndpointRouteBuilder MapAgentWork(this IEndpointRouteBuilder app)
    {
        var work = app.MapGroup("/api/agents/{agentId:guid}").WithTags("Agent work").RequireAuthorization(AgentAuthenticationHandler.Policy);
        work.MapPost("/jobs/next", NextJob)
            .WithSummary("Claim this agent's next job (204 when there is none)");
        work.MapPost("/jobs/{jobId:guid}/heartbeat", Heartbeat)
            .WithSummary("Renew the lease of the job this agent is running")
            .WithDescription("Agents send it every third of the lease. 404 unknown job, 403 another agent's job, 409 the job is not running (e.g. its lease already expired).");
        work.MapPost("/jobs/{jobId:guid}/release", Release)
            .WithSummary("Give back the job this agent is running (the agent is stopping): it is queued again at once")
            .WithDescription("Optional body {\"reason\"} (default \"agent stopping\"). Costs no attempt and no backoff, unlike a lease that runs out. "
                + "404 unknown job, 403 another agent's job, 409 the job is not running (already ended, or its lease expired).");
        work.MapGet("/key", KeyFile)
            .WithSummary("The repository's key file (master keys wrapped under the passphrase), for the agent to unwrap locally")
            .WithDescription("404 while no key has been created (PUT /api/repository/key).");
        work.MapGet("/chunks", KnownChunks)
            .WithSummary("Every chunk id the server holds, 32 raw bytes each, so the agent uploads only new chunks");
        work.MapPut("/recovery-points/{recoveryPointId:guid}/packs/{packId}", PutPack)
            .WithSummary("Upload one pack of a running backup into the server's disk store")
            .WithDescription("The body is a version 2 pack; its SHA-256 must equal packId and its trailer must be consistent (422 otherwise, nothing kept). "
                + "Its chunks join the server's index.");
        work.MapPost("/recovery-points/{recoveryPointId:guid}/complete", CompleteBackup)
            .WithSummary("Commit a finished backup (tree chunks, referenced chunks, totals); the recovery point is created")
            .WithDescription("422 when a referenced chunk is not stored on the server; nothing is committed then. Items go either whole "
                + "('items') or as changes against the recovery point the agent catalogued last ('itemChanges'); 409 with the problem code "
                + "'item-catalog-base-changed' when that point is no longer the data source's latest in the catalog or the changes do not fit "
                + "it (nothing is committed; send every item).");
        work.MapPost("/recovery-points/{recoveryPointId:guid}/fail", FailBackup).WithSummary("Report a backup that could not be taken");
        work.MapPut("/syncs/{syncId:guid}/packs/{packId}", PutSyncPack)
            .WithSummary("Upload one pack of a running synchronisation into the server's disk store")
            .WithDescription("As a backup's pack: a version 2 pack whose SHA-256 equals packId (422 otherwise, nothing kept); its chunks join the server's index.");
        work.MapPost("/syncs/{syncId:guid}/complete", CompleteSync)
            .WithSummary("End a synchronisation: the server's copy of the data source now holds every chunk listed (no recovery point)")
            .WithDescription("The body is a backup's commit (tree, chunks, totals; items are ignored). 422 when a referenced chunk is not stored "
                + "on the server; nothing is recorded then. The packs it references are kept until a recovery point taken after it exists.");
        work.MapPost("/syncs/{syncId:guid}/fail", FailSync).WithSummary("Report a synchronisation that could not be finished");
        work.MapGet("/restores/{restoreId:guid}/manifest", RestoreManifest).WithSummary("Read the manifest of the recovery point being restored");
        work.MapGet("/restores/{restoreId:guid}/index", RestoreIndex).WithSummary("Where each chunk of the recovery point being restored is stored");
        work.MapGet("/restores/{restoreId:guid}/packs/{packId}", RestorePack).WithSummary("Read one pack of the recovery point being restored");
        work.MapPost("/restores/{restoreId:guid}/complete", CompleteRestore).WithSummary("Report a finished, verified restore");
        work.MapPost("/restores/{restoreId:guid}/fail", FailRestore).WithSummary("Report a restore that could not be finished");
        return app;
    }

    private static async Task<Results<Ok<AgentJob>, NoContent>> NextJob(
        Guid agentId, ClaimsPrincipal user, IMediator m, IOptions<JobLeaseOptions> leases, TimeProvider clock, CancellationToken ct)
    {
        var job = await m.Send(new ClaimNextJob(user.RequireSelf(agentId)), ct);
        if (job is null) return TypedResults.NoContent();
        var kind = job.Kind switch
        {
            QueuedJobKind.Backup => AgentJobKind.Backup,
            QueuedJobKind.Synchronisation => AgentJobKind.Synchronisation,
            _ => AgentJobKind.Restore,
        };
        return TypedResults.Ok(new AgentJob(job.Id, kind, job.RecoveryPointId, job.Path, job.Paths, (ExistingItems)(int)job.IfExists,
            LeaseSeconds(leases.Value.Duration, clock), job.Include, job.Exclude));
    }

    /// <summary>
    /// The lease in the agent's seconds: the agent's clock is real time, so under a fast test clock (<see cref="ClockOptions"/>)
    /// the lease it must heartbeat within is shorter by the clock's speed (at least a second).
    /// </summary>
    private static int LeaseSeconds(TimeSpan lease, TimeProvider clock) =>
        (int)Math.Max(1, (clock is ScaledTimeProvider scaled ? lease / scaled.Speed : lease).TotalSeconds);

    private static async Task<Ok<JobLeaseRenewal>> Heartbeat(Guid agentId, Guid jobId, ClaimsPrincipal user, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(new JobLeaseRenewal(jobId, await m.Send(new RenewJobLease(user.RequireSelf(agentId), jobId), ct)));

    private static async Task<NoContent> Release(Guid agentId, Guid jobId, ReleaseJobRequest? request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new ReleaseJob(user.RequireSelf(agentId), jobId, request?.Reason), ct);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> KeyFile(Guid agentId, ClaimsPrincipal user, DiskStore disk, CancellationToken ct)
    {
        user.RequireSelf(agentId);
        var bytes = await disk.ReadKeyFileAsync(ct)
            ?? throw new NotFoundException("Repository key", RepositoryKey.StreamId);
        return TypedResults.Bytes(bytes, "application/json");
    }

    private static async Task KnownChunks(Guid agentId, HttpContext http, IDocumentSession session, CancellationToken ct)
    {
        http.User.RequireSelf(agentId);
        // Read apart from garbage collection's decisions; chunks of condemned packs are not offered (they may go), so
        // a backup that starts now uploads them again rather than relying on them.
        await CollectionLock.SharedAsync(session, ct);
        var condemned = (await session.Query<CondemnedPack>().Select(p => p.Id).ToListAsync(ct)).ToHashSet(StringComparer.Ordinal);
        var ids = condemned.Count == 0
            ? session.Query<StoredChunk>().Select(c => c.Id).ToAsyncEnumerable(ct)
            : session.Query<StoredChunk>().Select(c => new IndexedChunk(c.Id, c.PackId)).ToAsyncEnumerable(ct)
                .Where(c => !condemned.Contains(c.PackId)).Select(c => c.Id);
        http.Response.ContentType = "application/octet-stream";
        var buffer = new byte[ChunkId.Size * 1024];
        var used = 0;
        await foreach (var id in ids)
        {
            Convert.FromHexString(id, buffer.AsSpan(used, ChunkId.Size), out _, out _);
            used += ChunkId.Size;
            if (used == buffer.Length)
            {
                await http.Response.Body.WriteAsync(buffer, ct);
                used = 0;
            }
        }
        await http.Response.Body.WriteAsync(buffer.AsMemory(0, used), ct);
    }

    private static Task<Ok<PackStored>> PutPack(
        Guid agentId, Guid recoveryPointId, string packId, HttpContext http, IMediator m, DiskStore disk, IOptions<ServerOptions> options, CancellationToken ct) =>
        StorePackAsync(agentId, recoveryPointId, PackingJob.Backup, packId, http, m, disk, options, ct);

    private static Task<Ok<PackStored>> PutSyncPack(
        Guid agentId, Guid syncId, string packId, HttpContext http, IMediator m, DiskStore disk, IOptions<ServerOptions> options, CancellationToken ct) =>
        StorePackAsync(agentId, syncId, PackingJob.Synchronisation, packId, http, m, disk, options, ct);

    private static async Task<Ok<PackStored>> StorePackAsync(
        Guid agentId, Guid jobId, PackingJob kind, string packId, HttpContext http, IMediator m, DiskStore disk,
        IOptions<ServerOptions> options, CancellationToken ct)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = options.Value.MaxPackBytes;
        PackStored? stored = null;
        await m.Send(new WritePackToDisk(http.User.RequireSelf(agentId), jobId, packId, async token =>
        {
            var (result, entries) = await disk.PutPackAsync(packId, http.Request.Body, options.Value.MaxPackBytes, token);
            stored = result;
            return new PackOnDisk(result.Bytes, entries.Select(e => new StoredChunk
            {
                Id = e.Id.ToString(), PackId = packId, Offset = e.Offset, Length = e.Length, PlainLength = e.PlainLength, PlainOffset = e.PlainOffset,
            }).ToList());
        }, kind), ct);
        return TypedResults.Ok(stored!);
    }

    private static async Task<NoContent> CompleteBackup(
        Guid agentId, Guid recoveryPointId, CompleteBackupRequest request, ClaimsPrincipal user, IMediator m, DiskStore disk, CancellationToken ct)
    {
        user.RequireSelf(agentId);
        var (tree, ids) = ReferencedChunks(request);
        if (request.Items?.Any(i => i is null) == true || request.ItemChanges?.Added?.Any(i => i is null) == true)
            throw new FluentValidation.ValidationException([new FluentValidation.Results.ValidationFailure("Items", "'items' must not hold null entries.")]);
        var items = request.Items?.Select(Catalogued).ToList();
        var changes = request.ItemChanges is { } sent
            ? new Commands.Cataloguing.ItemChanges(sent.Base, sent.Added?.Select(Catalogued).ToList()!, sent.Removed)
            : null;
        await m.Send(new Commands.TakingRecoveryPoints.CompleteBackup(
            agentId, recoveryPointId, request.Files, request.Directories,
            (request.Skipped ?? []).Select(i => new Commands.RecoveryPoints.SkippedItemRecord(i.Path, i.Reason)).ToList(), request.BytesRead, ids,
            async (packs, token) =>
            {
                var missing = packs.Where(p => !disk.HasPack(p)).ToList();
                if (missing.Count > 0)
                    throw new InvalidDataException($"{missing.Count} pack(s) holding the backup's chunks are not on the server's disk, e.g. {missing[0]}.");
                var manifest = new Manifest(Manifest.CurrentVersion, recoveryPointId, tree, packs);
                var bytes = manifest.ToBytes();
                await disk.PutManifestAsync(recoveryPointId, bytes, token);
                return new StoredManifest(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), packs.Sum(disk.PackLength) + bytes.Length);
            }, items, changes), ct);
        return TypedResults.NoContent();

        static Commands.Cataloguing.CataloguedItem Catalogued(CatalogEntry i) => new(i.Path, i.Kind, i.Size, i.ModifiedAt);
    }

    /// <summary>The tree's chunk ids and every chunk id a commit references (tree and files), or a 400 naming the field.</summary>
    private static (IReadOnlyList<string> Tree, HashSet<string> All) ReferencedChunks(CompleteBackupRequest request)
    {
        var tree = request.Tree ?? [];
        if (tree.Count == 0 || tree.Any(t => !ChunkId.TryParse(t, out _)))
            throw new InvalidDataException("'tree' must list the chunk ids (64 lowercase hex) of the backed-up tree.");
        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(request.Chunks ?? "");
        }
        catch (FormatException)
        {
            throw new InvalidDataException("'chunks' must be base64 of 32-byte chunk ids.");
        }
        if (raw.Length % ChunkId.Size != 0) throw new InvalidDataException("'chunks' must be base64 of 32-byte chunk ids.");
        var ids = new HashSet<string>(tree, StringComparer.Ordinal);
        for (var i = 0; i < raw.Length; i += ChunkId.Size) ids.Add(Convert.ToHexStringLower(raw, i, ChunkId.Size));
        return (tree, ids);
    }

    private static async Task<NoContent> CompleteSync(
        Guid agentId, Guid syncId, CompleteBackupRequest request, ClaimsPrincipal user, IMediator m, DiskStore disk, CancellationToken ct)
    {
        user.RequireSelf(agentId);
        var (_, ids) = ReferencedChunks(request);
        await m.Send(new Commands.Synchronising.CompleteSync(
            agentId, syncId, request.Files, request.Directories, request.Skipped?.Count ?? 0, request.BytesRead, ids, packs =>
            {
                var missing = packs.Where(p => !disk.HasPack(p)).ToList();
                if (missing.Count > 0)
                    throw new InvalidDataException($"{missing.Count} pack(s) holding the synchronised chunks are not on the server's disk, e.g. {missing[0]}.");
                return packs.Sum(disk.PackLength);
            }), ct);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> FailSync(Guid agentId, Guid syncId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new Commands.Synchronising.FailSync(user.RequireSelf(agentId), syncId, request.Reason ?? ""), ct);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> FailBackup(Guid agentId, Guid recoveryPointId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new FailBackup(user.RequireSelf(agentId), recoveryPointId, request.Reason ?? ""), ct);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> RestoreManifest(
        Guid agentId, Guid restoreId, ClaimsPrincipal user, IMediator m, DiskStore disk, VaultStore vault, CancellationToken ct)
    {
        var access = await m.Send(new GetRestoreAccess(user.RequireSelf(agentId), restoreId), ct);
        var bytes = access.Source == RestoreSource.Disk
            ? await disk.ReadManifestAsync(access.RecoveryPointId, ct)
            : await vault.ReadManifestAsync(access.RecoveryPointId, ct)
              ?? throw new InvalidDataException($"The vault has no manifest for recovery point {access.RecoveryPointId}.");
        return TypedResults.Bytes(bytes, "application/json");
    }

    private static async Task<Ok<List<ChunkLocation>>> RestoreIndex(
        Guid agentId, Guid restoreId, ClaimsPrincipal user, IMediator m, IQuerySession session, CancellationToken ct)
    {
        var access = await m.Send(new GetRestoreAccess(user.RequireSelf(agentId), restoreId), ct);
        return TypedResults.Ok(await session.InPacksAsync(access.PackIds, ct));
    }

    private static async Task<IResult> RestorePack(
        Guid agentId, Guid restoreId, string packId, ClaimsPrincipal user, IMediator m, DiskStore disk, VaultStore vault, CancellationToken ct)
    {
        var access = await m.Send(new GetRestoreAccess(user.RequireSelf(agentId), restoreId), ct);
        if (!access.PackIds.Contains(packId))
            throw new NotFoundException($"Pack {packId} in recovery point", access.RecoveryPointId);
        var stream = access.Source == RestoreSource.Disk ? disk.OpenPack(packId) : await vault.OpenPackAsync(packId, ct);
        return TypedResults.Stream(stream, "application/octet-stream");
    }

    private static async Task<NoContent> CompleteRestore(Guid agentId, Guid restoreId, CompleteRestoreRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new CompleteRestore(user.RequireSelf(agentId), restoreId, request.Files, request.Bytes, request.SkippedExisting,
            request.Failed?.Select(f => new RestoreItemFailure(f.Path, f.Reason)).ToList()), ct);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> FailRestore(Guid agentId, Guid restoreId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new FailRestore(user.RequireSelf(agentId), restoreId, request.Reason ?? ""), ct);
        return TypedResults.NoContent();
    }
}

internal sealed record IndexedChunk(string Id, string PackId);
