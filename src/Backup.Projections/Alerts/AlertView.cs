using Backup.Commands.Alerts;
using FluentValidation;
using Marten;
using Marten.Events.Aggregation;
using Mediator;

namespace Backup.Projections.Alerts;

public enum AlertStatus
{
    Active = 1,
    Resolved = 2,
}

/// <summary>An alert as operators see it: its latest occurrence, and how often its condition came back.</summary>
public sealed class AlertView
{
    public Guid Id { get; set; }
    public AlertKind Kind { get; set; }
    public Guid SubjectId { get; set; }
    public Guid? GroupId { get; set; }
    public Guid? DataSourceId { get; set; }
    public Guid? AgentId { get; set; }
    public Guid? RecoveryPointId { get; set; }
    public AlertStatus Status { get; set; }
    public string Message { get; set; } = "";
    public DateTimeOffset RaisedAt { get; set; }
    public DateTimeOffset? ResolvedAt { get; set; }
    public string? Resolution { get; set; }
    public int Occurrences { get; set; }
}

/// <summary>Inline: the alert monitor reads which alerts are active from here in the same transaction it raises them in.</summary>
public sealed partial class AlertViewProjection : SingleStreamProjection<AlertView, Guid>
{
    // Marten applies the first event through Create only, so Create does what Apply does for a raise.
    public static AlertView Create(AlertRaised e)
    {
        var view = new AlertView { Id = e.AlertId };
        Apply(e, view);
        return view;
    }

    public static void Apply(AlertRaised e, AlertView v)
    {
        v.Kind = e.Kind;
        v.SubjectId = e.SubjectId;
        v.GroupId = e.GroupId;
        v.DataSourceId = e.DataSourceId;
        v.AgentId = e.AgentId;
        v.RecoveryPointId = e.RecoveryPointId;
        v.Status = AlertStatus.Active;
        v.Message = e.Message;
        v.RaisedAt = e.RaisedAt;
        v.ResolvedAt = null;
        v.Resolution = null;
        v.Occurrences++;
    }

    public static void Apply(AlertResolved e, AlertView v)
    {
        v.Status = AlertStatus.Resolved;
        v.ResolvedAt = e.ResolvedAt;
        v.Resolution = e.Resolution;
    }
}

/// <summary>Alerts, newest (latest raised) first, optionally only active or resolved ones, of one data source, or of one kind.</summary>
public sealed record ListAlerts(AlertStatus? Status = null, Guid? DataSourceId = null, AlertKind? Kind = null, int Limit = 100)
    : IQuery<IReadOnlyList<AlertView>>;

public sealed class ListAlertsValidator : AbstractValidator<ListAlerts>
{
    public ListAlertsValidator()
    {
        RuleFor(x => x.Status).IsInEnum();
        RuleFor(x => x.Kind).IsInEnum();
        RuleFor(x => x.Limit).InclusiveBetween(1, 500);
    }
}

public sealed class ListAlertsHandler(IQuerySession session) : IQueryHandler<ListAlerts, IReadOnlyList<AlertView>>
{
    public async ValueTask<IReadOnlyList<AlertView>> Handle(ListAlerts query, CancellationToken ct)
    {
        var q = session.Query<AlertView>().AsQueryable();
        if (query.Status is { } status) q = q.Where(a => a.Status == status);
        if (query.DataSourceId is { } ds) q = q.Where(a => a.DataSourceId == ds);
        if (query.Kind is { } kind) q = q.Where(a => a.Kind == kind);
        return await q.OrderByDescending(a => a.RaisedAt).ThenByDescending(a => a.Id).Take(query.Limit).ToListAsync(ct);
    }
}
