using Backup.Commands.Common;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.DataSources;

/// <summary>
/// Replaces a data source's include and exclude patterns (both lists whole; empty lists mean the whole folder), made against
/// <see cref="ExpectedVersion"/> of its stream (null: whatever is current). Returns the stream's new version (its ETag).
/// </summary>
public sealed record SetDataSourceFilters(Guid DataSourceId, long? ExpectedVersion, IReadOnlyList<string>? Include, IReadOnlyList<string>? Exclude)
    : ICommand<long>;

public sealed class SetDataSourceFiltersValidator : AbstractValidator<SetDataSourceFilters>
{
    public SetDataSourceFiltersValidator()
    {
        RuleFor(x => x.DataSourceId).NotEmpty();
        RuleFor(x => x.ExpectedVersion).GreaterThanOrEqualTo(1).WithMessage("'{PropertyName}' must be a version of the data source (1 or more).");
        this.ValidPatterns(x => x.Include);
        this.ValidPatterns(x => x.Exclude);
    }
}

public sealed class SetDataSourceFiltersHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<SetDataSourceFilters, long>
{
    public async ValueTask<long> Handle(SetDataSourceFilters c, CancellationToken ct)
    {
        var (source, version) = await session.LoadAsync<DataSource>(c.DataSourceId, DataSource.Next, ct);
        if (source is null) throw new NotFoundException("Data source", c.DataSourceId);
        if (c.ExpectedVersion is { } expected && expected != version)
            throw new PreconditionFailedException($"Data source {c.DataSourceId} is at version {version}, not {expected}; fetch it again and retry.", version);
        session.AppendExpected(c.DataSourceId, version, DataSource.SetFilters(source, c.DataSourceId, c.Include, c.Exclude, clock.GetUtcNow()));
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new PreconditionFailedException(
                $"Data source {c.DataSourceId} changed while this edit was being made; fetch it again and retry.", version + 1);
        }
        return version + 1;
    }
}
