using Backup.Api.Infrastructure;
using Backup.Commands.Alerts;
using Backup.Projections.Alerts;
using Mediator;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Backup.Api.Alerts;

public static class AlertEndpoints
{
    public static IEndpointRouteBuilder MapAlerts(this IEndpointRouteBuilder app)
    {
        var alerts = app.MapGroup("/api/alerts").WithTags("Alerts");
        alerts.MapGet("/", List)
            .WithSummary("List alerts, newest first")
            .WithDescription("Missed backups, failed backups, lost agents and failed vault transfers, raised and resolved by the workers. "
                + "Filters: status (Active, Resolved), dataSourceId, kind (MissedBackup, BackupFailed, AgentLost, VaultTransferFailed); limit 1–500 (default 100).")
            .RequireAuthorization(AccessPolicies.Read);
        return app;
    }

    private static async Task<Ok<IReadOnlyList<AlertView>>> List(
        AlertStatus? status, Guid? dataSourceId, AlertKind? kind, int? limit, IMediator m, CancellationToken ct) =>
        TypedResults.Ok(await m.Send(new ListAlerts(status, dataSourceId, kind, limit ?? 100), ct));
}
