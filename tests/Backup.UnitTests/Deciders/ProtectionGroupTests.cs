using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class ProtectionGroupTests
{
    private static readonly Guid GroupId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000b1");
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");

    [Fact]
    public void Created_group_has_a_trimmed_name_and_no_data_sources()
    {
        var created = ProtectionGroup.Create(GroupId, "  File servers \t", Clock.Now);

        created.Name.ShouldBe("File servers");
        var group = ProtectionGroup.Next(null, created)!;
        group.Id.ShouldBe(GroupId);
        group.Name.ShouldBe("File servers");
        group.DataSourceIds.ShouldBeEmpty();
    }

    [Fact]
    public void Adding_to_an_unknown_group_is_not_found()
    {
        var e = Should.Throw<NotFoundException>(() =>
            ProtectionGroup.AddDataSource(null, GroupId, Guid.NewGuid(), AgentId, DataSourceKind.Folder, "/srv/data", Clock.Now));

        e.Id.ShouldBe(GroupId);
        e.Resource.ShouldBe("Protection group");
    }

    [Fact]
    public void Adding_a_folder_tells_both_the_group_and_the_new_data_source()
    {
        var group = ProtectionGroup.Next(null, ProtectionGroup.Create(GroupId, "Servers", Clock.Now))!;
        var dataSourceId = Guid.NewGuid();

        var (toGroup, toSource) = ProtectionGroup.AddDataSource(group, GroupId, dataSourceId, AgentId, DataSourceKind.Folder, "/srv/data", Clock.Now);

        toGroup.ShouldBe(new DataSourceAddedToGroup(GroupId, dataSourceId, AgentId, DataSourceKind.Folder, "/srv/data", Clock.Now));
        toSource.ShouldBe(new DataSourceProtected(dataSourceId, GroupId, AgentId, DataSourceKind.Folder, "/srv/data", Clock.Now));
        var source = DataSource.Next(null, toSource)!;
        source.ShouldBeEquivalentTo(new DataSource(dataSourceId, GroupId, AgentId, DataSourceKind.Folder, "/srv/data", [], []));
    }

    [Fact]
    public void Folding_the_history_lists_data_sources_in_the_order_they_were_added()
    {
        var first = Guid.NewGuid();
        var second = Guid.NewGuid();
        object[] history =
        [
            new ProtectionGroupCreated(GroupId, "Servers", Clock.Now),
            new DataSourceAddedToGroup(GroupId, first, AgentId, DataSourceKind.Folder, "/srv/a", Clock.Now),
            new DataSourceAddedToGroup(GroupId, second, AgentId, DataSourceKind.Folder, "C:\\Data", Clock.Now),
        ];

        var group = history.Aggregate((ProtectionGroup?)null, ProtectionGroup.Next)!;

        group.DataSourceIds.ShouldBe([first, second]);
        group.Name.ShouldBe("Servers");
    }
}
