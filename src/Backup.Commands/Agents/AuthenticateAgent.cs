using Backup.Commands.Common;
using Marten;
using Mediator;

namespace Backup.Commands.Agents;

/// <summary>Who is this credential? Null when it proves nothing.</summary>
public sealed record AuthenticateAgent(string Credential) : IQuery<Guid?>;

public sealed class AuthenticateAgentHandler(IQuerySession session) : IQueryHandler<AuthenticateAgent, Guid?>
{
    public async ValueTask<Guid?> Handle(AuthenticateAgent query, CancellationToken ct)
    {
        if (!Secrets.TryParse(query.Credential, out var agentId, out var secret)) return null;
        var (agent, _) = await session.LoadAsync<Agent>(agentId, Agent.Next, ct);
        return agent is not null && Secrets.Matches(secret, agent.CredentialHash) ? agent.Id : null;
    }
}
