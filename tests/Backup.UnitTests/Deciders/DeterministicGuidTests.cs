using Backup.Commands.Common;

namespace Backup.UnitTests.Deciders;

public sealed class DeterministicGuidTests
{
    private static readonly Guid DnsNamespace = Guid.Parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8");

    [Fact]
    public void Matches_the_published_uuid5_of_python_org_in_the_dns_namespace()
    {
        // Python's uuid.uuid5(uuid.NAMESPACE_DNS, "python.org"), from its documentation.
        DeterministicGuid.Create(DnsNamespace, "python.org").ShouldBe(Guid.Parse("886313e1-3b8a-5372-9b90-0c9aee199e5d"));
    }

    [Fact]
    public void Same_name_gives_the_same_guid_and_different_names_differ()
    {
        DeterministicGuid.Create("vault-transfer:1").ShouldBe(DeterministicGuid.Create("vault-transfer:1"));
        DeterministicGuid.Create("vault-transfer:1").ShouldNotBe(DeterministicGuid.Create("vault-transfer:2"));
        DeterministicGuid.Create(DnsNamespace, "x").ShouldNotBe(DeterministicGuid.Create(DeterministicGuid.BackupNamespace, "x"));
    }

    [Fact]
    public void Default_namespace_is_the_backup_namespace()
    {
        DeterministicGuid.Create("name").ShouldBe(DeterministicGuid.Create(DeterministicGuid.BackupNamespace, "name"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("ß-名字")]
    [InlineData("vault-transfer:0195f3a0000070008000000000000001")]
    public void Is_a_version_5_rfc_variant_uuid(string name)
    {
        var text = DeterministicGuid.Create(name).ToString("D");

        text[14].ShouldBe('5');
        "89ab".ShouldContain(text[19]);
    }
}
