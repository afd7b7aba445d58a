using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Storage.Contracts;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.DataSources;

/// <summary>
/// Stops protecting a data source. With <see cref="DataOnRemoval.Retain"/> its queued backups are cancelled and its recovery
/// points stay until retention expires them; with <see cref="DataOnRemoval.Delete"/> (destructive: the API asks for an admin
/// and a security PIN) every recovery point of it is deleted too. Either way the folder may be protected again afterwards.
/// </summary>
public sealed record RemoveDataSource(Guid DataSourceId, DataOnRemoval? Data) : ICommand<DataSourceRemoval>;

/// <summary>What the removal did: backups that were waiting and will not be taken, recovery points deleted.</summary>
public sealed record DataSourceRemoval(Guid DataSourceId, DataOnRemoval Data, int BackupsCancelled, int RecoveryPointsDeleted);

public sealed class RemoveDataSourceValidator : AbstractValidator<RemoveDataSource>
{
    public RemoveDataSourceValidator()
    {
        RuleFor(x => x.DataSourceId).NotEmpty();
        const string Message = "'data' must be 'retain' (keep the recovery points until retention expires them) or 'delete'.";
        RuleFor(x => x.Data).NotNull().WithMessage(Message).IsInEnum().WithMessage(Message);
    }
}

public sealed class RemoveDataSourceHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RemoveDataSource, DataSourceRemoval>
{
    public const string CancelledReason = "Cancelled: the data source was removed from protection.";

    public const string DeletedReason = "Deleted with its data source (removed from protection, delete data).";

    public async ValueTask<DataSourceRemoval> Handle(RemoveDataSource c, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var data = c.Data!.Value;
        var (source, version) = await session.LoadAsync<DataSource>(c.DataSourceId, DataSource.Next, ct);
        var (removed, fromGroup) = DataSource.Remove(source, c.DataSourceId, data, now);
        session.AppendExpected(c.DataSourceId, version, removed);
        // Not at an expected version: removing a member does not depend on the group's policies, and a concurrent policy edit
        // should not make the removal fail (the member's own stream guards against removing it twice).
        session.Events.Append(fromGroup.GroupId, fromGroup);

        int cancelled = 0, deleted = 0;
        if (data == DataOnRemoval.Retain)
        {
            // The agent's queue (inline) holds every backup still waiting; it names the agent, the stream names the data source.
            var waiting = await session.Query<QueuedJob>()
                .Where(j => j.AgentId == removed.AgentId && j.Kind == JobKind.Backup && j.State == QueuedJobState.Queued)
                .Select(j => j.Id).ToListAsync(ct);
            foreach (var id in waiting)
            {
                var job = await session.LoadJobAsync(JobKind.Backup, id, ct);
                if (job.DataSourceId != c.DataSourceId || job.Cancel(CancelledReason, now) is not { } cancel) continue;
                session.AppendExpected(id, job.Version, cancel);
                cancelled++;
            }
        }
        else
        {
            // Every recovery point stream of the data source starts with its BackupRequested: read them from the events
            // themselves (not a read model that may lag or predate this), by the event's stable alias.
            var schema = session.DocumentStore.Options.Events.DatabaseSchemaName;
            var streams = await session.AdvancedSql.QueryAsync<Guid>(
                $"select distinct stream_id from \"{schema}\".mt_events where type = '{BackupEvents.BackupRequestedAlias}' and data ->> 'DataSourceId' = ?",
                ct, c.DataSourceId.ToString());
            foreach (var id in streams)
            {
                var (rp, rpVersion) = await session.LoadAsync<RecoveryPoint>(id, RecoveryPoint.Next, ct);
                var events = RecoveryPoint.Delete(rp, DeletedReason, now);
                if (events.Length == 0) continue;
                session.AppendExpected(id, rpVersion, events);
                deleted++;
                if (events.Length > 1) cancelled++;
            }
        }

        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            // The data source, one of its recovery points (an agent claiming or finishing a backup) or the security PIN staged in
            // this session moved under us: nothing was written.
            throw new ConflictException($"Data source {c.DataSourceId} or one of its backups changed while it was being removed; nothing was done, try again.");
        }
        return new DataSourceRemoval(c.DataSourceId, data, cancelled, deleted);
    }
}
