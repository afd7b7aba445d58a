using System.Security.Claims;
using Backup.Api.Infrastructure;
using Backup.Commands.Synchronising;
using Backup.Storage.Contracts;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Backup.Api.AgentWork;

/// <summary>An agent's synchronisation job: its packs into the server's disk store, its end (no recovery point), or its failure.</summary>
public static class SyncJobEndpoints
{
    public static RouteGroupBuilder MapSyncJobs(this RouteGroupBuilder work)
    {
        work.MapPut("/syncs/{syncId:guid}/packs/{packId}", PutPack)
            .WithSummary("Upload one pack of a running synchronisation into the server's disk store")
            .WithDescription("As a backup's pack: a version 2 pack whose SHA-256 equals packId (422 otherwise, nothing kept); its chunks join the server's index.");
        work.MapPost("/syncs/{syncId:guid}/complete", Complete)
            .WithSummary("End a synchronisation: the server's copy of the data source now holds every chunk listed (no recovery point)")
            .WithDescription("The body is a backup's commit (tree, chunks, totals; items are ignored). 422 when a referenced chunk is not stored "
                + "on the server; nothing is recorded then. The packs it references are kept until a recovery point taken after it exists.");
        work.MapPost("/syncs/{syncId:guid}/fail", Fail).WithSummary("Report a synchronisation that could not be finished");
        return work;
    }

    private static Task<Ok<PackStored>> PutPack(
        Guid agentId, Guid syncId, string packId, HttpContext http, IMediator m, IOptions<ServerOptions> options, CancellationToken ct) =>
        AgentWorkEndpoints.PutPackAsync(JobKind.Synchronisation, agentId, syncId, packId, http, m, options, ct);

    private static async Task<NoContent> Complete(Guid agentId, Guid syncId, CompleteBackupRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        user.RequireSelf(agentId);
        var (_, ids) = AgentWorkEndpoints.ReferencedChunks(request);
        await m.Send(new CompleteSync(agentId, syncId, request.Files, request.Directories, request.Skipped?.Count ?? 0, request.BytesRead, ids), ct);
        return TypedResults.NoContent();
    }

    private static Task<NoContent> Fail(Guid agentId, Guid syncId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct) =>
        AgentWorkEndpoints.FailAsync(JobKind.Synchronisation, agentId, syncId, request, user, m, ct);
}
