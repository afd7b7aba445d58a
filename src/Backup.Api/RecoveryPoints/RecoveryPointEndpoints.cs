using Backup.Api.Infrastructure;
using Backup.Api.ProtectionGroups;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.Restores;
using Backup.Commands.TakingRecoveryPoints;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;
using Marten;
using Backup.Commands.Restoring;
using Backup.Projections.RecoveryPoints;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.RecoveryPoints;

/// <summary>
/// <c>paths</c>: items to restore, relative to the protected folder (a directory brings all it holds); leave
/// out for the whole recovery point. <c>ifExists</c>: Overwrite (default), Skip or KeepBoth.
/// </summary>
public sealed record RequestRestoreRequest(RestoreSource? Source, string? TargetPath, IReadOnlyList<string>? Paths, IfItemExists? IfExists);

public static class RecoveryPointEndpoints
{
    public static IEndpointRouteBuilder MapRecoveryPoints(this IEndpointRouteBuilder app)
    {
        var points = app.MapGroup("/api/recovery-points").WithTags("Recovery points");
        points.MapGet("/", List)
            .WithSummary("List recovery points, newest first")
            .WithDescription("Filters: dataSourceId, groupId, agentId, tier (Disk, Vault, Both, None), from (inclusive) / to (exclusive) on the request time. "
                + "limit 1–500 (default 50); pass the returned nextAfter as after for the next page.")
            .RequireAuthorization(AccessPolicies.Read);
        points.MapGet("/{recoveryPointId:guid}", Get).WithSummary("Get a recovery point").RequireAuthorization(AccessPolicies.Read);
        points.MapPost("/{recoveryPointId:guid}/check", Check)
            .WithSummary("Check one copy of a recovery point: every pack present, its bytes matching its id, its chunks where the index says")
            .WithDescription("tier = Disk (default) or Vault. Reads every pack of the copy; the outcome is recorded (RecoveryPointChecked) and returned, "
                + "naming each missing or damaged pack. 409 when the recovery point is not created or has no vault copy.")
            .RequireAuthorization(AccessPolicies.Operate);
        points.MapPost("/{recoveryPointId:guid}/restores", RequestRestore)
            .WithSummary("Restore a recovery point to an alternate folder")
            .WithDescription("Source is Disk or Vault; Vault needs a completed online copy (409 otherwise). A copy retention expired, or a recovery point "
                + "deleted with its data source, is a 409. Optional paths select items; ifExists is Overwrite, Skip or KeepBoth.")
            .RequireAuthorization(AccessPolicies.Operate);
        return app;
    }

    private static async Task<Ok<Page<RecoveryPointView>>> List(
        Guid? dataSourceId, Guid? groupId, Guid? agentId, RecoveryPointTier? tier, DateTimeOffset? from, DateTimeOffset? to,
        string? after, int? limit, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new ListRecoveryPoints(dataSourceId, groupId, agentId, tier, from, to, after, limit ?? 50), ct));

    private static async Task<Results<Ok<RecoveryPointView>, NotFound>> Get(Guid recoveryPointId, IMediator m, CancellationToken ct) =>
        await m.Send(new GetRecoveryPoint(recoveryPointId), ct) is { } rp ? TypedResults.Ok(rp) : TypedResults.NotFound();

    private static async Task<Ok<RecoveryPointChecked>> Check(
        Guid recoveryPointId, RestoreSource? tier, HttpContext http, IMediator m, IQuerySession session, DiskStore disk, VaultStore vault, CancellationToken ct)
    {
        var source = tier ?? RestoreSource.Disk;
        var outcome = await m.Send(new CheckRecoveryPoint(recoveryPointId, source, http.User.Actor(), async (packs, token) =>
        {
            var damaged = new List<DamagedPack>();
            long bytes = 0;
            var indexed = (await session.InPacksAsync(packs, token)).ToLookup(c => c.PackId, StringComparer.Ordinal);
            foreach (var packId in packs)
            {
                var expected = indexed[packId];
                string? problem;
                if (source == RestoreSource.Disk)
                {
                    if (!disk.HasPack(packId)) { damaged.Add(new DamagedPack(packId, "missing")); continue; }
                    await using var file = disk.OpenPack(packId);
                    bytes += file.Length;
                    problem = await PackCheck.ProblemAsync(file, packId, expected, token);
                }
                else
                {
                    if (await vault.PackLengthAsync(packId, token) is null) { damaged.Add(new DamagedPack(packId, "missing")); continue; }
                    var tmp = Path.Combine(Path.GetTempPath(), $"check-{packId}-{Guid.NewGuid():N}");
                    try
                    {
                        await using var copy = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
                        await using (var blob = await vault.OpenPackAsync(packId, token)) await blob.CopyToAsync(copy, 1 << 20, token);
                        bytes += copy.Length;
                        problem = await PackCheck.ProblemAsync(copy, packId, expected, token);
                    }
                    finally
                    {
                        if (File.Exists(tmp)) File.Delete(tmp);
                    }
                }
                if (problem is not null) damaged.Add(new DamagedPack(packId, problem));
            }
            return new CheckOutcome(packs.Count, bytes, damaged);
        }), ct);
        return TypedResults.Ok(outcome);
    }

    private static async Task<Accepted<IdResponse>> RequestRestore(Guid recoveryPointId, RequestRestoreRequest request, HttpContext http, IMediator m, CancellationToken ct)
    {
        var id = await m.Send(new RequestRestore(recoveryPointId, request.Source, request.TargetPath ?? "", http.User.Actor(),
            request.Paths, request.IfExists ?? IfItemExists.Overwrite), ct);
        return TypedResults.Accepted($"/api/restores/{id}", new IdResponse(id));
    }
}
