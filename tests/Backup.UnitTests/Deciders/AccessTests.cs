using Backup.Commands.Access;
using Backup.Commands.Common;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class ApiKeyTests
{
    private static readonly Guid KeyId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1");
    private const string Secret = "the-key-secret";

    private static ApiKey Issued() => ApiKey.Next(null, ApiKey.Issue(KeyId, "  Ada ", Roles.Auditor, Secrets.Hash(Secret), Clock.Now))!;

    [Fact]
    public void An_issued_key_stores_the_trimmed_name_the_role_and_only_the_hash()
    {
        var issued = ApiKey.Issue(KeyId, "  Ada ", Roles.Auditor, Secrets.Hash(Secret), Clock.Now);

        issued.ShouldBe(new ApiKeyIssued(KeyId, "Ada", "auditor", Secrets.Hash(Secret), Clock.Now));
        issued.SecretHash.ShouldNotContain(Secret);
        Issued().Accepts(Secret).ShouldBeTrue();
        Issued().Accepts("another-secret").ShouldBeFalse();
    }

    [Fact]
    public void A_revoked_key_is_refused_and_cannot_be_revoked_again()
    {
        var revoked = ApiKey.Revoke(Issued(), KeyId, Clock.Now.AddDays(1));

        revoked.ShouldBe(new ApiKeyRevoked(KeyId, Clock.Now.AddDays(1)));
        var key = ApiKey.Next(Issued(), revoked)!;
        key.Accepts(Secret).ShouldBeFalse();
        Should.Throw<ConflictException>(() => ApiKey.Revoke(key, KeyId, Clock.Now.AddDays(2)));
    }

    [Fact]
    public void Revoking_an_unknown_key_is_not_found() =>
        Should.Throw<NotFoundException>(() => ApiKey.Revoke(null, KeyId, Clock.Now));

    [Theory]
    [InlineData("Ada", "admin", true)]
    [InlineData("Ada", "operator", true)]
    [InlineData("Ada", "auditor", true)]
    [InlineData("Ada", "agent", false)]
    [InlineData("Ada", "Admin", false)]
    [InlineData("Ada", "", false)]
    [InlineData("   ", "admin", false)]
    [InlineData("", "admin", false)]
    public void Only_named_people_with_a_people_role_get_keys(string name, string role, bool valid) =>
        new IssueApiKeyValidator().Validate(new IssueApiKey(name, role)).IsValid.ShouldBe(valid);
}

public sealed class SecurityPinTests
{
    private static readonly Guid PinId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d1");
    private const string Pin = "01234567";

    private static SecurityPin Issued() => SecurityPin.Next(null, SecurityPin.Issue(PinId, Pin, Clock.Now))!;

    [Fact]
    public void A_pin_is_eight_digits_valid_five_minutes_and_only_its_salted_hash_is_stored()
    {
        SecurityPin.NewPin().ShouldMatch("^[0-9]{8}$");
        var issued = SecurityPin.Issue(PinId, Pin, Clock.Now);

        issued.ExpiresAt.ShouldBe(Clock.Now.AddMinutes(5));
        issued.PinHash.ShouldNotContain(Pin);
        issued.PinHash.ShouldNotBe(Secrets.Hash(Pin), "salted with the PIN's id, so equal PINs do not hash alike");
    }

    [Fact]
    public void A_good_pin_is_used_once()
    {
        var used = SecurityPin.Use(Issued(), Pin, "revoke-api-key", Clock.Now.AddMinutes(4));

        used.ShouldBe(new SecurityPinUsed(PinId, "revoke-api-key", Clock.Now.AddMinutes(4)));
        var spent = SecurityPin.Next(Issued(), used)!;
        Should.Throw<ForbiddenException>(() => SecurityPin.Use(spent, Pin, "revoke-api-key", Clock.Now.AddMinutes(4)))
            .Message.ShouldContain("already been used");
    }

    [Fact]
    public void A_wrong_or_expired_pin_is_forbidden_and_the_message_names_the_header()
    {
        Should.Throw<ForbiddenException>(() => SecurityPin.Use(Issued(), "76543210", "op", Clock.Now)).Message.ShouldContain("X-Security-Pin");
        Should.Throw<ForbiddenException>(() => SecurityPin.Use(null, Pin, "op", Clock.Now)).Message.ShouldContain("X-Security-Pin");
        Should.Throw<ForbiddenException>(() => SecurityPin.Use(Issued(), Pin, "op", Clock.Now.AddMinutes(5).AddSeconds(1)))
            .Message.ShouldContain("expired");
    }
}
