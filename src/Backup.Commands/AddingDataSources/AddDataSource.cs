using Backup.Commands.Agents;
using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.Uniqueness;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.AddingDataSources;

/// <summary>Protects a folder of an enrolled agent; <see cref="Include"/> and <see cref="Exclude"/> are optional patterns (see <c>PathFilter</c>).</summary>
public sealed record AddDataSource(
    Guid GroupId, Guid AgentId, DataSourceKind? Kind, string Path,
    IReadOnlyList<string>? Include = null, IReadOnlyList<string>? Exclude = null) : ICommand<Guid>;

public sealed class AddDataSourceValidator : AbstractValidator<AddDataSource>
{
    public AddDataSourceValidator()
    {
        RuleFor(x => x.AgentId).NotEmpty();
        RuleFor(x => x.Kind).NotNull().IsInEnum();
        RuleFor(x => x.Path).NotEmpty().MaximumLength(4096)
            .Must(IsAbsolute).WithMessage("'Path' must be an absolute path on the agent's machine (e.g. /srv/data or C:\\Data).");
        this.ValidPatterns(x => x.Include);
        this.ValidPatterns(x => x.Exclude);
    }

    // The path is on the agent's machine, which may not share this server's OS.
    public static bool IsAbsolute(string? path) =>
        path is not null && (path.StartsWith('/') || (path.Length >= 3 && char.IsAsciiLetter(path[0]) && path[1] == ':' && path[2] is '\\' or '/'));
}

public sealed class AddDataSourceHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<AddDataSource, Guid>
{
    public async ValueTask<Guid> Handle(AddDataSource command, CancellationToken ct)
    {
        var (group, groupVersion) = await session.LoadAsync<ProtectionGroup>(command.GroupId, ProtectionGroup.Next, ct);
        if (group is null) throw new NotFoundException("Protection group", command.GroupId);
        var (agent, _) = await session.LoadAsync<Agent>(command.AgentId, Agent.Next, ct);
        if (agent is null) throw new UnprocessableException($"Agent '{command.AgentId}' is not enrolled.");

        var dataSourceId = Guid.CreateVersion7();
        var path = command.Path.Length > 1 ? command.Path.TrimEnd('/', '\\') : command.Path;
        var key = ProtectedFolder.KeyOf(agent.Id, path);
        if (await session.Query<ProtectedFolder>().AnyAsync(f => f.Key == key, ct))
            throw new ConflictException($"'{path}' on agent {agent.Id} is already protected.");
        var (toGroup, toDataSource) = ProtectionGroup.AddDataSource(group, command.GroupId, dataSourceId, agent.Id, command.Kind!.Value, path, clock.GetUtcNow());
        session.AppendExpected(group.Id, groupVersion, toGroup);
        var source = DataSource.Next(null, toDataSource);
        if (command.Include is { Count: > 0 } || command.Exclude is { Count: > 0 })
            session.Events.StartStream<DataSource>(dataSourceId, toDataSource,
                DataSource.SetFilters(source, dataSourceId, command.Include, command.Exclude, clock.GetUtcNow()));
        else
            session.Events.StartStream<DataSource>(dataSourceId, toDataSource);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (Exception e) when (e.IsUniqueViolation())
        {
            // Lost a race for the same folder (unique index on ProtectedFolder.Key).
            throw new ConflictException($"'{path}' on agent {agent.Id} is already protected.");
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ConflictException($"Protection group {group.Id} changed meanwhile; try again.");
        }
        return dataSourceId;
    }
}
