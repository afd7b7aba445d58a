using Backup.Api.Infrastructure;
using Backup.Commands.Access;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Projections;
using Backup.Projections.RecoveryPoints;
using Backup.Storage.Contracts;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.RecoveryPoints;

/// <summary>
/// <c>paths</c>: items to restore, relative to the protected folder (a directory brings all it holds); leave
/// out for the whole recovery point. <c>ifExists</c>: KeepBoth (default), Skip, or Overwrite (needs a security PIN).
/// <c>intoSystemFolder</c>: true to restore into a system folder (/, /etc, /usr, C:\Windows…), refused otherwise.
/// </summary>
public sealed record RequestRestoreRequest(StorageTier? Source, string? TargetPath, IReadOnlyList<string>? Paths, ExistingItems? IfExists, bool? IntoSystemFolder = null);

public static class RecoveryPointEndpoints
{
    public static IEndpointRouteBuilder MapRecoveryPoints(this IEndpointRouteBuilder app)
    {
        var points = app.MapGroup("/api/recovery-points").WithTags("Recovery points");
        points.MapGet("/", List)
            .WithSummary("List recovery points, newest first")
            .WithDescription("Filters: dataSourceId, groupId, agentId, tier (Disk, Vault, Both, None), from (inclusive) / to (exclusive) on the request time. "
                + "limit 1–500 (default 50); pass the returned nextAfter as after for the next page. asOf (ISO 8601, not in the future): the "
                + "points created by then with the tiers that held them then (tier filters apply to those); later copies, expiries, "
                + "deletions and checks are left out of each item.")
            .ReadsYourWrites(nameof(RecoveryPointView))
            .RequireAuthorization(AccessPolicies.Read);
        points.MapGet("/{recoveryPointId:guid}", Get).ReadsYourWrites(nameof(RecoveryPointView)).WithETag().WithSummary("Get a recovery point").RequireAuthorization(AccessPolicies.Read);
        points.MapGet("/{recoveryPointId:guid}/custody", Custody)
            .WithSummary("Chain of custody of a recovery point: every step from its request to its expiry, in log order")
            .WithDescription("Scheduled or requested → started (claimed by its agent; lost leases and re-queues) → each pack written to disk (its id is its SHA-256) "
                + "→ created → each consistency check (tier, outcome, damaged packs) → the vault copy (started, each pack uploaded, failed, completed) → expired per tier. "
                + "Each step has its time, actor, event type, global sequence and, once the audit chain has linked it, the chain's hash of that event "
                + "(compare with GET /api/audit/verify). Read from the event log itself. 404 when no recovery point has this id.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .RequireAuthorization(AccessPolicies.Audit);
        points.MapPost("/{recoveryPointId:guid}/check", Check).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Check one copy of a recovery point: every pack present, its bytes matching its id, its chunks where the index says")
            .WithDescription("tier = Disk (default) or Vault. Reads every pack of the copy; the outcome is recorded (RecoveryPointChecked) and returned, "
                + "naming each missing or damaged pack. 409 when the recovery point is not created or has no vault copy.")
            .RequireAuthorization(AccessPolicies.Operate);
        points.MapPost("/{recoveryPointId:guid}/restores", RequestRestore).ProducesProblem(StatusCodes.Status409Conflict)
            .WithSummary("Restore a recovery point to an alternate folder")
            .WithDescription("Source is Disk or Vault; Vault needs a completed online copy (409 otherwise). A copy retention expired, or a recovery point "
                + "deleted with its data source, is a 409. Optional paths select items; ifExists is KeepBoth (the default: an item already at the "
                + "target stays, the restored one goes beside it), Skip, or Overwrite, which destroys what is there and so needs a security PIN "
                + $"from POST /api/access/security-pin in {SecurityPin.Header} (403 without). A target that is a system folder (/, /etc, /usr, /home, "
                + "C:\\, C:\\Windows…) is a 400 unless intoSystemFolder is true.")
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .RequireAuthorization(AccessPolicies.Operate);
        return app;
    }

    private static async Task<Ok<Page<RecoveryPointView>>> List(
        Guid? dataSourceId, Guid? groupId, Guid? agentId, RecoveryPointTier? tier, DateTimeOffset? from, DateTimeOffset? to,
        string? after, int? limit, DateTimeOffset? asOf, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new ListRecoveryPoints(dataSourceId, groupId, agentId, tier, from, to, after, limit ?? 50, asOf), ct));

    private static async Task<Results<Ok<RecoveryPointView>, NotFound>> Get(Guid recoveryPointId, IMediator m, CancellationToken ct) =>
        await m.Send(new GetRecoveryPoint(recoveryPointId), ct) is { } rp ? TypedResults.Ok(rp) : TypedResults.NotFound();

    private static async Task<Results<Ok<RecoveryPointCustody>, NotFound>> Custody(Guid recoveryPointId, IMediator m, CancellationToken ct) =>
        await m.Send(new GetRecoveryPointCustody(recoveryPointId), ct) is { } custody ? TypedResults.Ok(custody) : TypedResults.NotFound();

    private static async Task<Ok<RecoveryPointChecked>> Check(
        Guid recoveryPointId, StorageTier? tier, HttpContext http, IMediator m, CancellationToken ct)
    {
        var source = tier ?? StorageTier.Disk;
        var outcome = await m.Send(new CheckRecoveryPoint(recoveryPointId, source, http.User.Actor()), ct);
        return TypedResults.Ok(outcome);
    }

    private static async Task<Accepted<IdResponse>> RequestRestore(Guid recoveryPointId, RequestRestoreRequest request, HttpContext http, IMediator m, CancellationToken ct)
    {
        var ifExists = request.IfExists ?? ExistingItems.KeepBoth;
        if (ifExists == ExistingItems.Overwrite) await SecurityPinFilter.UsePinAsync(http, "restore-overwrite");
        var id = await m.Send(new RequestRestore(recoveryPointId, request.Source, request.TargetPath ?? "", http.User.Actor(),
            request.Paths, ifExists, request.IntoSystemFolder ?? false), ct);
        return TypedResults.Accepted($"/api/restores/{id}", new IdResponse(id));
    }
}
