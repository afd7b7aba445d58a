using Backup.Commands.Common;
using Backup.Commands.DataSources;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.RecoveryPoints;

/// <summary>"Create recovery point now" for one data source; returns the id of the recovery point to be.</summary>
public sealed record RequestBackup(Guid DataSourceId, string RequestedBy) : ICommand<Guid>;

public sealed class RequestBackupValidator : AbstractValidator<RequestBackup>
{
    public RequestBackupValidator()
    {
        RuleFor(x => x.DataSourceId).NotEmpty();
        RuleFor(x => x.RequestedBy).NotEmpty();
    }
}

public sealed class RequestBackupHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<RequestBackup, Guid>
{
    public async ValueTask<Guid> Handle(RequestBackup command, CancellationToken ct)
    {
        var (source, _) = await session.LoadAsync<DataSource>(command.DataSourceId, DataSource.Next, ct);
        var recoveryPointId = Guid.CreateVersion7();
        session.Events.StartStream<RecoveryPoint>(recoveryPointId,
            RecoveryPoint.Request(source, command.DataSourceId, recoveryPointId, command.RequestedBy, clock.GetUtcNow()));
        await session.SaveChangesAsync(ct);
        return recoveryPointId;
    }
}
