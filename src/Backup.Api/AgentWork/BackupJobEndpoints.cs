using System.Security.Claims;
using Backup.Api.Infrastructure;
using Backup.Commands.Cataloguing;
using Backup.Commands.RecoveryPoints;
using Backup.Storage.Contracts;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace Backup.Api.AgentWork;

/// <summary>An agent's backup job: its packs into the server's disk store, its commit (the recovery point), or its failure.</summary>
public static class BackupJobEndpoints
{
    public static RouteGroupBuilder MapBackupJobs(this RouteGroupBuilder work)
    {
        work.MapPut("/recovery-points/{recoveryPointId:guid}/packs/{packId}", PutPack)
            .WithSummary("Upload one pack of a running backup into the server's disk store")
            .WithDescription("The body is a version 2 pack; its SHA-256 must equal packId and its trailer must be consistent (422 otherwise, nothing kept). "
                + "Its chunks join the server's index.");
        work.MapPost("/recovery-points/{recoveryPointId:guid}/complete", Complete)
            .WithSummary("Commit a finished backup (tree chunks, referenced chunks, totals); the recovery point is created")
            .WithDescription("422 when a referenced chunk is not stored on the server; nothing is committed then. Items go either whole "
                + "('items') or as changes against the recovery point the agent catalogued last ('itemChanges'); 409 with the problem code "
                + "'item-catalog-base-changed' when that point is no longer the data source's latest in the catalog or the changes do not fit "
                + "it (nothing is committed; send every item).");
        work.MapPost("/recovery-points/{recoveryPointId:guid}/fail", Fail).WithSummary("Report a backup that could not be taken");
        return work;
    }

    private static Task<Ok<PackStored>> PutPack(
        Guid agentId, Guid recoveryPointId, string packId, HttpContext http, IMediator m, IOptions<ServerOptions> options, CancellationToken ct) =>
        AgentWorkEndpoints.PutPackAsync(JobKind.Backup, agentId, recoveryPointId, packId, http, m, options, ct);

    private static async Task<NoContent> Complete(Guid agentId, Guid recoveryPointId, CompleteBackupRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        user.RequireSelf(agentId);
        var (tree, ids) = AgentWorkEndpoints.ReferencedChunks(request);
        if (request.Items?.Any(i => i is null) == true || request.ItemChanges?.Added?.Any(i => i is null) == true)
            throw new FluentValidation.ValidationException([new FluentValidation.Results.ValidationFailure("Items", "'items' must not hold null entries.")]);
        var items = request.Items?.Select(Catalogued).ToList();
        var changes = request.ItemChanges is { } sent
            ? new ItemChanges(sent.Base, sent.Added?.Select(Catalogued).ToList()!, sent.Removed)
            : null;
        await m.Send(new CompleteBackup(
            agentId, recoveryPointId, request.Files, request.Directories,
            (request.Skipped ?? []).Select(i => new SkippedItemRecord(i.Path, i.Reason)).ToList(), request.BytesRead, ids, tree, items, changes), ct);
        return TypedResults.NoContent();

        static CataloguedItem Catalogued(CatalogEntry i) => new(i.Path, i.Kind, i.Size, i.ModifiedAt);
    }

    private static Task<NoContent> Fail(Guid agentId, Guid recoveryPointId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct) =>
        AgentWorkEndpoints.FailAsync(JobKind.Backup, agentId, recoveryPointId, request, user, m, ct);
}
