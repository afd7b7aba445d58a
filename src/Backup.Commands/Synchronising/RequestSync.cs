using Backup.Commands.Common;
using Backup.Commands.DataSources;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Synchronising;

/// <summary>"Synchronise now" for one data source (no recovery point); returns the synchronisation's id, which is also its job's.</summary>
public sealed record RequestSync(Guid DataSourceId, string RequestedBy) : ICommand<Guid>;

public sealed class RequestSyncValidator : AbstractValidator<RequestSync>
{
    public RequestSyncValidator()
    {
        RuleFor(x => x.DataSourceId).NotEmpty();
        RuleFor(x => x.RequestedBy).NotEmpty();
    }
}

public sealed class RequestSyncHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RequestSync, Guid>
{
    public async ValueTask<Guid> Handle(RequestSync command, CancellationToken ct)
    {
        var (source, _) = await session.LoadAsync<DataSource>(command.DataSourceId, DataSource.Next, ct);
        var syncId = Guid.CreateVersion7();
        session.Events.StartStream<Synchronisation>(syncId,
            Synchronisation.Request(source, command.DataSourceId, syncId, command.RequestedBy, clock.GetUtcNow()));
        await session.SaveChangesAsync(ct);
        return syncId;
    }
}
