using System.Security.Claims;
using Backup.Api.Infrastructure;
using Backup.Commands.Dispatching;
using Backup.Commands.Restores;
using Backup.Commands.Restoring;
using Backup.Commands.TakingRecoveryPoints;
using Backup.Storage.Contracts;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;
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
        work.MapPut("/recovery-points/{recoveryPointId:guid}/packs/{packId}", PutPack)
            .WithSummary("Upload one pack of a running backup into the server's disk store")
            .WithDescription("The body is the pack; its SHA-256 must equal packId (422 otherwise, nothing kept). ?chunks= is the number of pieces it holds.");
        work.MapPost("/recovery-points/{recoveryPointId:guid}/complete", CompleteBackup)
            .WithSummary("Commit the manifest of a finished backup; the recovery point is created");
        work.MapPost("/recovery-points/{recoveryPointId:guid}/fail", FailBackup).WithSummary("Report a backup that could not be taken");
        work.MapGet("/restores/{restoreId:guid}/manifest", RestoreManifest).WithSummary("Read the manifest of the recovery point being restored");
        work.MapGet("/restores/{restoreId:guid}/packs/{packId}", RestorePack).WithSummary("Read one pack of the recovery point being restored");
        work.MapPost("/restores/{restoreId:guid}/complete", CompleteRestore).WithSummary("Report a finished, verified restore");
        work.MapPost("/restores/{restoreId:guid}/fail", FailRestore).WithSummary("Report a restore that could not be finished");
        return app;
    }

    private static async Task<Results<Ok<AgentJob>, NoContent>> NextJob(
        Guid agentId, ClaimsPrincipal user, IMediator m, IOptions<JobLeaseOptions> leases, CancellationToken ct)
    {
        var job = await m.Send(new ClaimNextJob(user.RequireSelf(agentId)), ct);
        if (job is null) return TypedResults.NoContent();
        var kind = job.Kind == QueuedJobKind.Backup ? AgentJobKind.Backup : AgentJobKind.Restore;
        return TypedResults.Ok(new AgentJob(job.Id, kind, job.RecoveryPointId, job.Path, job.Paths, (ExistingItems)(int)job.IfExists,
            (int)leases.Value.Duration.TotalSeconds));
    }

    private static async Task<Ok<JobLeaseRenewal>> Heartbeat(Guid agentId, Guid jobId, ClaimsPrincipal user, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(new JobLeaseRenewal(jobId, await m.Send(new RenewJobLease(user.RequireSelf(agentId), jobId), ct)));

    private static async Task<Ok<PackStored>> PutPack(
        Guid agentId, Guid recoveryPointId, string packId, int? chunks, HttpContext http, IMediator m, DiskStore disk,
        IOptions<ServerOptions> options, CancellationToken ct)
    {
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = options.Value.MaxPackBytes;
        PackStored? stored = null;
        await m.Send(new WritePackToDisk(http.User.RequireSelf(agentId), recoveryPointId, packId, chunks ?? 1, async token =>
        {
            stored = await disk.PutPackAsync(packId, http.Request.Body, options.Value.MaxPackBytes, token);
            return stored.Bytes;
        }), ct);
        return TypedResults.Ok(stored!);
    }

    private static async Task<NoContent> CompleteBackup(
        Guid agentId, Guid recoveryPointId, CompleteBackupRequest request, ClaimsPrincipal user, IMediator m, DiskStore disk, CancellationToken ct)
    {
        user.RequireSelf(agentId);
        var manifest = request.Manifest ?? throw new InvalidDataException("The request has no manifest.");
        if (manifest.RecoveryPointId != recoveryPointId)
            throw new InvalidDataException($"The manifest is for recovery point {manifest.RecoveryPointId}, not {recoveryPointId}.");
        var problems = manifest.Validate();
        if (problems.Count > 0) throw new InvalidDataException(string.Join(" ", problems));
        var packIds = manifest.PackIds().ToList();
        var missing = packIds.Where(p => !disk.HasPack(p)).ToList();
        if (missing.Count > 0)
            throw new InvalidDataException($"{missing.Count} pack(s) named by the manifest are not on the server, e.g. {missing[0]}.");

        var bytes = manifest.ToBytes();
        var files = manifest.Entries.Where(e => e.Kind == EntryKind.File).ToList();
        await m.Send(new Commands.TakingRecoveryPoints.CompleteBackup(
            agentId, recoveryPointId, files.Count, manifest.Entries.Count(e => e.Kind == EntryKind.Directory), manifest.Skipped?.Count ?? 0,
            files.Sum(f => f.Size), packIds.Sum(disk.PackLength) + bytes.Length, packIds,
            Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)),
            token => disk.PutManifestAsync(recoveryPointId, bytes, token)), ct);
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

    private static async Task<IResult> RestorePack(
        Guid agentId, Guid restoreId, string packId, ClaimsPrincipal user, IMediator m, DiskStore disk, VaultStore vault, CancellationToken ct)
    {
        var access = await m.Send(new GetRestoreAccess(user.RequireSelf(agentId), restoreId), ct);
        if (!access.PackIds.Contains(packId))
            throw new Commands.Common.NotFoundException($"Pack {packId} in recovery point", access.RecoveryPointId);
        var stream = access.Source == RestoreSource.Disk ? disk.OpenPack(packId) : await vault.OpenPackAsync(packId, ct);
        return TypedResults.Stream(stream, "application/octet-stream");
    }

    private static async Task<NoContent> CompleteRestore(Guid agentId, Guid restoreId, CompleteRestoreRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new CompleteRestore(user.RequireSelf(agentId), restoreId, request.Files, request.Bytes, request.SkippedExisting), ct);
        return TypedResults.NoContent();
    }

    private static async Task<NoContent> FailRestore(Guid agentId, Guid restoreId, FailJobRequest request, ClaimsPrincipal user, IMediator m, CancellationToken ct)
    {
        await m.Send(new FailRestore(user.RequireSelf(agentId), restoreId, request.Reason ?? ""), ct);
        return TypedResults.NoContent();
    }
}
