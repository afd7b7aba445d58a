using Backup.Commands.Agents;
using Backup.Commands.Common;
using Backup.UnitTests.Support;
using AgentDecider = Backup.Commands.Agents.Agent;

namespace Backup.UnitTests.Deciders;

public sealed class EnrolmentTokenTests
{
    private static readonly Guid TokenId = Guid.Parse("0195f3a0-0000-7000-8000-000000000001");
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");
    private const string Secret = "the-one-time-secret";

    private static EnrolmentToken Issued(TimeSpan validFor) =>
        EnrolmentToken.Next(null, EnrolmentToken.Issue(TokenId, Secrets.Hash(Secret), validFor, Clock.Now))!;

    [Fact]
    public void Issued_token_expires_after_its_validity_and_stores_only_the_hash()
    {
        var issued = EnrolmentToken.Issue(TokenId, Secrets.Hash(Secret), TimeSpan.FromMinutes(30), Clock.Now);

        issued.ExpiresAt.ShouldBe(Clock.Now.AddMinutes(30));
        issued.IssuedAt.ShouldBe(Clock.Now);
        issued.SecretHash.ShouldNotContain(Secret);
        var token = EnrolmentToken.Next(null, issued)!;
        token.Id.ShouldBe(TokenId);
        token.RedeemedBy.ShouldBeNull();
    }

    [Fact]
    public void Valid_token_enrols_the_machine_and_is_spent()
    {
        var token = Issued(TimeSpan.FromHours(1));

        var (redeemed, enrolled) = EnrolmentToken.Redeem(token, Secret, AgentId, "web-01", "credential-hash", Clock.Now.AddMinutes(5));

        redeemed.ShouldBe(new EnrolmentTokenRedeemed(TokenId, AgentId, Clock.Now.AddMinutes(5)));
        enrolled.ShouldBe(new AgentEnrolled(AgentId, "web-01", "credential-hash", TokenId, Clock.Now.AddMinutes(5)));
        EnrolmentToken.Next(token, redeemed)!.RedeemedBy.ShouldBe(AgentId);
        var agent = AgentDecider.Next(null, enrolled)!;
        agent.Id.ShouldBe(AgentId);
        agent.MachineName.ShouldBe("web-01");
        agent.CredentialHash.ShouldBe("credential-hash");
    }

    [Fact]
    public void Wrong_secret_is_unauthenticated()
    {
        var token = Issued(TimeSpan.FromHours(1));

        Should.Throw<UnauthenticatedException>(() =>
            EnrolmentToken.Redeem(token, "not-the-secret", AgentId, "web-01", "h", Clock.Now));
    }

    [Fact]
    public void Unknown_token_is_unauthenticated()
    {
        Should.Throw<UnauthenticatedException>(() =>
            EnrolmentToken.Redeem(null, Secret, AgentId, "web-01", "h", Clock.Now));
    }

    [Fact]
    public void Token_used_once_is_forbidden_the_second_time()
    {
        var token = Issued(TimeSpan.FromHours(1));
        var (redeemed, _) = EnrolmentToken.Redeem(token, Secret, AgentId, "web-01", "h", Clock.Now);
        var spent = EnrolmentToken.Next(token, redeemed);

        var e = Should.Throw<ForbiddenException>(() =>
            EnrolmentToken.Redeem(spent, Secret, Guid.NewGuid(), "web-02", "h2", Clock.Now.AddMinutes(1)));
        e.Message.ShouldContain("already been used");
    }

    [Fact]
    public void Spent_token_with_wrong_secret_reveals_nothing_about_its_state()
    {
        var token = Issued(TimeSpan.FromHours(1)) with { RedeemedBy = AgentId };

        Should.Throw<UnauthenticatedException>(() =>
            EnrolmentToken.Redeem(token, "guess", Guid.NewGuid(), "web-02", "h2", Clock.Now));
    }

    [Fact]
    public void Expired_token_is_forbidden()
    {
        var token = Issued(TimeSpan.FromMinutes(10));

        var e = Should.Throw<ForbiddenException>(() =>
            EnrolmentToken.Redeem(token, Secret, AgentId, "web-01", "h", Clock.Now.AddMinutes(10).AddTicks(1)));
        e.Message.ShouldContain("expired");
    }

    [Fact]
    public void Token_is_still_good_at_the_last_moment_of_its_validity()
    {
        var token = Issued(TimeSpan.FromMinutes(10));

        var (redeemed, _) = EnrolmentToken.Redeem(token, Secret, AgentId, "web-01", "h", Clock.Now.AddMinutes(10));

        redeemed.TokenId.ShouldBe(TokenId);
    }
}
