using Backup.Commands.Common;
using FluentValidation;
using Marten;
using Mediator;

namespace Backup.Commands.Agents;

public sealed record EnrolmentTokenIssuedResult(Guid TokenId, string Token, DateTimeOffset ExpiresAt);

/// <summary>An operator asks for a one-time token to enrol one machine.</summary>
public sealed record IssueEnrolmentToken(int ValidForMinutes) : ICommand<EnrolmentTokenIssuedResult>;

public sealed class IssueEnrolmentTokenValidator : AbstractValidator<IssueEnrolmentToken>
{
    public IssueEnrolmentTokenValidator() =>
        RuleFor(x => x.ValidForMinutes).InclusiveBetween(1, 7 * 24 * 60);
}

public sealed class IssueEnrolmentTokenHandler(IDocumentSession session, TimeProvider clock)
    : ICommandHandler<IssueEnrolmentToken, EnrolmentTokenIssuedResult>
{
    public async ValueTask<EnrolmentTokenIssuedResult> Handle(IssueEnrolmentToken command, CancellationToken ct)
    {
        var tokenId = Guid.CreateVersion7();
        var secret = Secrets.NewSecret();
        var issued = EnrolmentToken.Issue(tokenId, Secrets.Hash(secret), TimeSpan.FromMinutes(command.ValidForMinutes), clock.GetUtcNow());
        session.Events.StartStream<EnrolmentToken>(tokenId, issued);
        await session.SaveChangesAsync(ct);
        return new EnrolmentTokenIssuedResult(tokenId, Secrets.Compose(tokenId, secret), issued.ExpiresAt);
    }
}
