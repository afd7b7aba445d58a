using System.Security.Claims;
using Backup.Api.Infrastructure;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.Stores;
using Backup.Storage.Contracts;
using Backup.Storage.Format;
using Marten;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.AgentWork;

/// <summary>An agent's restore job: what it reads (manifest, chunk index, packs, from disk or vault), its end, or its failure.</summary>
public static class RestoreJobEndpoints
{
    public static RouteGroupBuilder MapRestoreJobs(this RouteGroupBuilder work)
    {
        work.MapGet("/restores/{restoreId:guid}/manifest", Manifest).WithSummary("Read the manifest of the recovery point being restored");
        work.MapGet("/restores/{restoreId:guid}/index", Index).WithSummary("Where each chunk of the recovery point being restored is stored");
        work.MapGet("/restores/{restoreId:guid}/packs/{packId}", Pack).WithSummary("Read one pack of the recovery point being restored")
            .WithDescription("From the tier the restore asked for, or the one 'tier' names (an agent that found the disk's copy damaged asks "
                + "for the vault's); a restore from disk whose pack file is gone reads the vault's copy. 409 with the problem code "
                + "'restore-data-missing' when no tier holds the pack.");
        work.MapPost("/restores/{restoreId:guid}/complete", Complete).WithSummary("Report a finished, verified restore");
        work.MapPost("/restores/{restoreId:guid}/fail", Fail).WithSummary("Report a restore that could not be finished");
        return work;
    }

    private static async Task<IResult> Manifest(Guid agentId, Guid restoreId, ClaimsPrincipal user, IMediator m, IRestoreReads reads, CancellationToken ct)
    {
        var access = await m.Send(new GetRestoreAccess(user.RequireSelf(agentId), restoreId), ct);
        return TypedResults.Bytes(await reads.ReadManifestAsync(access, ct), "application/json");
    }

    private static async Task<Ok<List<ChunkLocation>>> Index(
        Guid agentId, Guid restoreId, ClaimsPrincipal user, IMediator m, IQuerySession session, CancellationToken ct)
    {
        var access = await m.Send(new GetRestoreAccess(user.RequireSelf(agentId), restoreId), ct);
        return TypedResults.Ok(await session.InPacksAsync(access.PackIds, ct));
    }

    private static async Task<IResult> Pack(
        Guid agentId, Guid restoreId, string packId, StorageTier? tier, ClaimsPrincipal user, IMediator m, IRestoreReads reads, CancellationToken ct)
    {
        var access = await m.Send(new GetRestoreAccess(user.RequireSelf(agentId), restoreId), ct);
        if (!access.PackIds.Contains(packId))
            throw new NotFoundException($"Pack {packId} in recovery point", access.RecoveryPointId);
        return TypedResults.Stream(await reads.OpenPackAsync(access, packId, tier, ct), "application/octet-stream");
    }

    private static async Task<NoContent> Complete(Guid agentId, Guid restoreId, CompleteRestoreRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new CompleteRestore(user.RequireSelf(agentId), restoreId, request.Files, request.Bytes, request.SkippedExisting,
            request.Failed?.Select(f => new RestoreItemFailure(f.Path, f.Reason)).ToList()), ct);
        return TypedResults.NoContent();
    }

    private static Task<NoContent> Fail(Guid agentId, Guid restoreId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct) =>
        AgentWorkEndpoints.FailAsync(JobKind.Restore, agentId, restoreId, request, user, m, ct);
}
