using Backup.Commands.Common;

namespace Backup.Commands.Agents;

public sealed record EnrolmentTokenIssued(Guid TokenId, string SecretHash, DateTimeOffset ExpiresAt, DateTimeOffset IssuedAt);

public sealed record EnrolmentTokenRedeemed(Guid TokenId, Guid AgentId, DateTimeOffset RedeemedAt);

public sealed record EnrolmentToken(Guid Id, string SecretHash, DateTimeOffset ExpiresAt, Guid? RedeemedBy)
{
    public static EnrolmentToken? Next(EnrolmentToken? state, object @event) => @event switch
    {
        EnrolmentTokenIssued e => new EnrolmentToken(e.TokenId, e.SecretHash, e.ExpiresAt, null),
        EnrolmentTokenRedeemed e when state is not null => state with { RedeemedBy = e.AgentId },
        _ => state,
    };

    public static EnrolmentTokenIssued Issue(Guid tokenId, string secretHash, TimeSpan validFor, DateTimeOffset now) =>
        new(tokenId, secretHash, now + validFor, now);

    /// <summary>
    /// A token is good for exactly one enrolment. An unknown id or wrong secret is "who are you?" (401);
    /// a known token that is spent or expired is "not any more" (403).
    /// </summary>
    public static (EnrolmentTokenRedeemed Redeemed, AgentEnrolled Enrolled) Redeem(
        EnrolmentToken? token, string presentedSecret, Guid newAgentId, string machineName, string credentialHash,
        DateTimeOffset now)
    {
        if (token is null || !Secrets.Matches(presentedSecret, token.SecretHash))
            throw new UnauthenticatedException("The enrolment token is not valid.");
        if (token.RedeemedBy is not null)
            throw new ForbiddenException("The enrolment token has already been used.");
        if (now > token.ExpiresAt)
            throw new ForbiddenException("The enrolment token has expired.");
        return (new EnrolmentTokenRedeemed(token.Id, newAgentId, now),
                new AgentEnrolled(newAgentId, machineName, credentialHash, token.Id, now));
    }
}
