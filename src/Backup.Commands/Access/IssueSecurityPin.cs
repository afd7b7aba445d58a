using Marten;
using Mediator;

namespace Backup.Commands.Access;

public sealed record SecurityPinIssuedResult(string Pin, DateTimeOffset ExpiresAt);

public sealed record IssueSecurityPin : ICommand<SecurityPinIssuedResult>;

public sealed class IssueSecurityPinHandler(IDocumentSession session, TimeProvider clock) : ICommandHandler<IssueSecurityPin, SecurityPinIssuedResult>
{
    public async ValueTask<SecurityPinIssuedResult> Handle(IssueSecurityPin command, CancellationToken ct)
    {
        var pinId = Guid.CreateVersion7();
        var pin = SecurityPin.NewPin();
        var issued = SecurityPin.Issue(pinId, pin, clock.GetUtcNow());
        session.Events.StartStream<SecurityPin>(pinId, issued);
        await session.SaveChangesAsync(ct);
        return new SecurityPinIssuedResult(pin, issued.ExpiresAt);
    }
}
