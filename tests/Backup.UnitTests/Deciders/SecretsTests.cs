using Backup.Commands.Common;

namespace Backup.UnitTests.Deciders;

public sealed class SecretsTests
{
    [Fact]
    public void Composed_credential_parses_back_to_its_id_and_secret()
    {
        var id = Guid.NewGuid();
        var secret = Secrets.NewSecret();

        var composed = Secrets.Compose(id, secret);

        Secrets.TryParse(composed, out var parsedId, out var parsedSecret).ShouldBeTrue();
        parsedId.ShouldBe(id);
        parsedSecret.ShouldBe(secret);
    }

    [Fact]
    public void Everything_after_the_first_dot_is_the_secret()
    {
        var id = Guid.NewGuid();

        Secrets.TryParse($"{id:N}.a.b.c", out var parsedId, out var secret).ShouldBeTrue();

        parsedId.ShouldBe(id);
        secret.ShouldBe("a.b.c");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("no-dot-at-all")]
    [InlineData(".secret-without-id")]
    [InlineData("0195f3a0000070008000000000000001.")]
    [InlineData("not-a-guid.secret")]
    [InlineData("0195f3a0-0000-7000-8000-000000000001.secret")] // dashed form is not the composed form
    [InlineData("0195f3a000007000800000000000000.secret")] // 31 hex digits
    public void Malformed_credentials_are_rejected(string? value)
    {
        Secrets.TryParse(value, out var id, out var secret).ShouldBeFalse();
        id.ShouldBe(Guid.Empty);
        secret.ShouldBe("");
    }

    [Fact]
    public void New_secrets_are_unique_url_safe_and_carry_256_bits()
    {
        var secrets = Enumerable.Range(0, 200).Select(_ => Secrets.NewSecret()).ToList();

        secrets.Distinct().Count().ShouldBe(200);
        foreach (var s in secrets)
        {
            s.Length.ShouldBe(43); // 32 bytes in unpadded base64url
            s.ShouldAllBe(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_');
        }
    }

    [Fact]
    public void Hash_is_lowercase_hex_sha256_of_the_secret()
    {
        // FIPS 180-2 test vector for SHA-256("abc").
        Secrets.Hash("abc").ShouldBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    [Fact]
    public void Matches_accepts_only_the_secret_that_was_hashed()
    {
        var secret = Secrets.NewSecret();
        var hash = Secrets.Hash(secret);

        Secrets.Matches(secret, hash).ShouldBeTrue();
        Secrets.Matches(Secrets.NewSecret(), hash).ShouldBeFalse();
        Secrets.Matches(secret + "x", hash).ShouldBeFalse();
        Secrets.Matches(secret, hash.ToUpperInvariant()).ShouldBeFalse();
        Secrets.Matches(secret, "").ShouldBeFalse();
        Secrets.Matches(secret, hash[..32]).ShouldBeFalse();
    }
}
