using Backup.Projections.Auditing;

namespace Backup.UnitTests.Auditing;

/// <summary>The link hash changes with anything an attacker could edit in an event row, and with nothing else.</summary>
public sealed class AuditChainTests
{
    private static readonly StoredEvent Event = new(
        42, Guid.Parse("0195f3a0-0000-7000-8000-000000000001"), Guid.Parse("0195f3a0-0000-7000-8000-000000000002"), 3,
        "protection_group_created.v1", new DateTimeOffset(2026, 11, 25, 14, 30, 0, TimeSpan.Zero).AddTicks(1234560),
        "corr", "CreateProtectionGroup", """{"actor": "operator"}""", """{"Name": "Finance"}""",
        "Backup.Commands.ProtectionGroups.ProtectionGroupCreated, Backup.Commands", "*DEFAULT*");

    private static readonly string Previous = Convert.ToHexStringLower(new byte[32].Select((_, i) => (byte)i).ToArray());

    public static TheoryData<string, StoredEvent> Edits => new()
    {
        { "sequence", Event with { Sequence = 43 } },
        { "event id", Event with { EventId = Guid.Parse("0195f3a0-0000-7000-8000-000000000009") } },
        { "stream id", Event with { StreamId = Guid.Parse("0195f3a0-0000-7000-8000-000000000009") } },
        { "version", Event with { Version = 4 } },
        { "type", Event with { EventType = "protection_group_created.v2" } },
        { "timestamp by a microsecond", Event with { Timestamp = Event.Timestamp.AddTicks(10) } },
        { "correlation", Event with { CorrelationId = "other" } },
        { "correlation removed", Event with { CorrelationId = null } },
        { "causation", Event with { CausationId = "RequestBackup" } },
        { "headers", Event with { Headers = """{"actor": "someone-else"}""" } },
        { "headers removed", Event with { Headers = null } },
        { "data", Event with { Data = """{"Name": "Finances"}""" } },
        { ".NET type", Event with { DotNetType = "Backup.Commands.ProtectionGroups.ProtectionGroupRenamed, Backup.Commands" } },
        { "tenant", Event with { TenantId = "other" } },
        { "a character moved between fields", Event with { CorrelationId = "cor", CausationId = "rCreateProtectionGroup" } },
        { "binary payload set", Event with { BinaryData = [] } },
        { "binary payload", Event with { BinaryData = [1, 2, 3] } },
    };

    [Theory]
    [MemberData(nameof(Edits))]
    public void Any_edit_of_the_row_changes_the_link(string edit, StoredEvent edited) =>
        AuditChain.Link(Previous, edited).ShouldNotBe(AuditChain.Link(Previous, Event), edit);

    [Fact]
    public void A_row_without_a_binary_payload_links_as_it_did_before_the_payload_was_hashed() =>
        AuditChain.Link(Previous, Event).ShouldBe("88740b76b5dcb9e70e24d35f96d3c38c7505e8fb7300016adfeb248444b7f65f");

    [Fact]
    public void The_link_depends_on_the_previous_one() =>
        AuditChain.Link(AuditChain.Genesis, Event).ShouldNotBe(AuditChain.Link(Previous, Event));

    [Fact]
    public void The_link_is_a_stable_sha256()
    {
        var link = AuditChain.Link(Previous, Event);
        link.ShouldMatch("^[0-9a-f]{64}$");
        AuditChain.Link(Previous, Event with { }).ShouldBe(link);
    }

    [Fact]
    public void Sub_microsecond_ticks_do_not_count_because_postgresql_does_not_keep_them() =>
        AuditChain.Link(Previous, Event with { Timestamp = Event.Timestamp.AddTicks(7) }).ShouldBe(AuditChain.Link(Previous, Event));

    [Fact]
    public void The_same_instant_in_another_offset_is_the_same_link() =>
        AuditChain.Link(Previous, Event with { Timestamp = Event.Timestamp.ToOffset(TimeSpan.FromHours(2)) }).ShouldBe(AuditChain.Link(Previous, Event));
}
