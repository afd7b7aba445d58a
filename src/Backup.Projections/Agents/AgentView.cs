using Backup.Commands.Agents;
using Marten;
using Marten.Events.Aggregation;
using Mediator;

namespace Backup.Projections.Agents;

public sealed class AgentView
{
    public Guid Id { get; set; }
    public string MachineName { get; set; } = "";
    public DateTimeOffset EnrolledAt { get; set; }
}

public sealed partial class AgentViewProjection : SingleStreamProjection<AgentView, Guid>
{
    public static AgentView Create(AgentEnrolled e) => new() { Id = e.AgentId, MachineName = e.MachineName, EnrolledAt = e.EnrolledAt };
}

public sealed record ListAgents : IQuery<IReadOnlyList<AgentView>>;

public sealed class ListAgentsHandler(IQuerySession session) : IQueryHandler<ListAgents, IReadOnlyList<AgentView>>
{
    public async ValueTask<IReadOnlyList<AgentView>> Handle(ListAgents query, CancellationToken ct) =>
        await session.Query<AgentView>().OrderBy(a => a.EnrolledAt).ToListAsync(ct);
}

public sealed record GetAgent(Guid AgentId) : IQuery<AgentView?>;

public sealed class GetAgentHandler(IQuerySession session) : IQueryHandler<GetAgent, AgentView?>
{
    public async ValueTask<AgentView?> Handle(GetAgent query, CancellationToken ct) => await session.LoadAsync<AgentView>(query.AgentId, ct);
}
