using Backup.Commands.Common;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Agents;

public sealed record AgentEnrolment(Guid AgentId, string Credential);

/// <summary>A machine presents its one-time token and receives its own credential.</summary>
public sealed record EnrolAgent(string Token, string MachineName) : ICommand<AgentEnrolment>;

public sealed class EnrolAgentValidator : AbstractValidator<EnrolAgent>
{
    public EnrolAgentValidator()
    {
        RuleFor(x => x.Token).NotEmpty();
        RuleFor(x => x.MachineName).NotEmpty().MaximumLength(253);
    }
}

public sealed class EnrolAgentHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<EnrolAgent, AgentEnrolment>
{
    public async ValueTask<AgentEnrolment> Handle(EnrolAgent command, CancellationToken ct)
    {
        if (!Secrets.TryParse(command.Token, out var tokenId, out var secret))
            throw new UnauthenticatedException("The enrolment token is not valid.");

        var (token, version) = await session.LoadAsync<EnrolmentToken>(tokenId, EnrolmentToken.Next, ct);
        var agentId = Guid.CreateVersion7();
        var credentialSecret = Secrets.NewSecret();
        var (redeemed, enrolled) = EnrolmentToken.Redeem(token, secret, agentId, command.MachineName.Trim(), Secrets.Hash(credentialSecret), clock.GetUtcNow());

        // The expected version makes a token raced by two machines enrol only one of them.
        session.AppendExpected(tokenId, version, redeemed);
        session.Events.StartStream<Agent>(agentId, enrolled);
        try
        {
            await session.SaveChangesAsync(ct);
        }
        catch (JasperFx.Events.EventStreamUnexpectedMaxEventIdException)
        {
            throw new ForbiddenException("The enrolment token has already been used.");
        }
        return new AgentEnrolment(agentId, Secrets.Compose(agentId, credentialSecret));
    }
}
