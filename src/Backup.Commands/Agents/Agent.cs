namespace Backup.Commands.Agents;

public sealed record AgentEnrolled(Guid AgentId, string MachineName, string CredentialHash, Guid EnrolmentTokenId, DateTimeOffset EnrolledAt);

public sealed record Agent(Guid Id, string MachineName, string CredentialHash)
{
    public static Agent? Next(Agent? state, object @event) => @event switch
    {
        AgentEnrolled e => new Agent(e.AgentId, e.MachineName, e.CredentialHash),
        _ => state,
    };
}
