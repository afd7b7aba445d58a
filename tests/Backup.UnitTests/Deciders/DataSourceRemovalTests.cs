using Backup.Commands.Common;
using Backup.Commands.DataSources;
using Backup.Commands.Dispatching;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

/// <summary>Patterns and removal from protection, decided without I/O.</summary>
public sealed class DataSourceRemovalTests
{
    private static readonly Guid SourceId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d1");
    private static readonly Guid GroupId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000b1");
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");
    private static readonly Guid PointId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1");

    private static readonly DataSourceProtected Protected = new(SourceId, GroupId, AgentId, DataSourceKind.Folder, "/srv/data", Clock.Now);

    private static DataSource Source(params object[] more) => new object[] { Protected }.Concat(more).Aggregate((DataSource?)null, DataSource.Next)!;

    private static RecoveryPoint Point(params object[] events) =>
        new object[] { new BackupRequested(PointId, SourceId, GroupId, AgentId, "/srv/data", "alice", Clock.Now) }.Concat(events)
            .Aggregate((RecoveryPoint?)null, RecoveryPoint.Next)!;

    [Fact]
    public void Patterns_are_set_without_duplicates_in_the_order_given()
    {
        var set = DataSource.SetFilters(Source(), SourceId, ["b/", "*.a", "b/"], null, Clock.Now);

        set.Include.ShouldBe(["b/", "*.a"]);
        set.Exclude.ShouldBeEmpty();
        var folded = DataSource.Next(Source(), set)!;
        folded.Include.ShouldBe(["b/", "*.a"]);
    }

    [Fact]
    public void Removing_names_the_group_so_the_member_leaves_it_and_the_data_choice_is_recorded()
    {
        var (removed, fromGroup) = DataSource.Remove(Source(), SourceId, DataOnRemoval.Delete, Clock.Now);

        removed.ShouldBe(new DataSourceRemoved(SourceId, GroupId, AgentId, "/srv/data", DataOnRemoval.Delete, Clock.Now));
        fromGroup.ShouldBe(new DataSourceRemovedFromGroup(GroupId, SourceId, Clock.Now));
        var group = new ProtectionGroup(GroupId, "g", [SourceId, PointId]);
        ProtectionGroup.Next(group, fromGroup)!.DataSourceIds.ShouldBe([PointId]);
        DataSource.Next(Source(), removed)!.Removed.ShouldBe(DataOnRemoval.Delete);
    }

    [Fact]
    public void A_removed_data_source_cannot_be_removed_again_backed_up_or_filtered()
    {
        var removed = Source(new DataSourceRemoved(SourceId, GroupId, AgentId, "/srv/data", DataOnRemoval.Retain, Clock.Now));

        Should.Throw<ConflictException>(() => DataSource.Remove(removed, SourceId, DataOnRemoval.Delete, Clock.Now));
        Should.Throw<ConflictException>(() => DataSource.Protected(removed, SourceId));
        Should.Throw<ConflictException>(() => DataSource.SetFilters(removed, SourceId, ["x"], null, Clock.Now));
        Should.Throw<NotFoundException>(() => DataSource.Remove(null, SourceId, DataOnRemoval.Retain, Clock.Now));
    }

    [Fact]
    public void Retain_cancels_a_backup_still_waiting_but_lets_a_running_one_finish()
    {
        JobLifecycle.Cancel<RecoveryPoint>(Point(), "gone", Clock.Now).ShouldBe(new RecoveryPointFailed(PointId, "gone", Clock.Now));
        JobLifecycle.Cancel<RecoveryPoint>(Point(new BackupStarted(PointId, AgentId, Clock.Now)), "gone", Clock.Now).ShouldBeNull();
    }

    [Fact]
    public void Delete_fails_an_unfinished_backup_first_and_deletes_every_point_once()
    {
        var waiting = RecoveryPoint.Delete(Point(), "deleted", Clock.Now);
        waiting.ShouldBe([new RecoveryPointFailed(PointId, "deleted", Clock.Now), new RecoveryPointDeleted(PointId, SourceId, "deleted", Clock.Now)]);

        var created = Point(new BackupStarted(PointId, AgentId, Clock.Now),
            new RecoveryPointCreated(PointId, SourceId, 1, 0, 0, 1, 1, [new string('a', 64)], new string('e', 64), Clock.Now));
        RecoveryPoint.Delete(created, "deleted", Clock.Now).ShouldBe([new RecoveryPointDeleted(PointId, SourceId, "deleted", Clock.Now)]);

        var deleted = RecoveryPoint.Next(created, new RecoveryPointDeleted(PointId, SourceId, "deleted", Clock.Now))!;
        deleted.Deleted.ShouldBeTrue();
        RecoveryPoint.Delete(deleted, "deleted", Clock.Now).ShouldBeEmpty();
        RecoveryPoint.Expire(deleted, StorageTier.Disk, "old", Clock.Now).ShouldBeNull("a deleted point has nothing left to expire");
    }

    [Theory]
    [InlineData("/abs")]
    [InlineData("../up")]
    [InlineData("")]
    public void Invalid_patterns_are_refused_by_both_commands_naming_the_item(string pattern)
    {
        var add = new AddDataSourceValidator().Validate(new AddDataSource(GroupId, AgentId, DataSourceKind.Folder, "/srv/x", Exclude: ["ok/", pattern]));
        add.Errors.Select(e => e.PropertyName).ShouldBe(["Exclude[1]"]);
        var set = new SetDataSourceFiltersValidator().Validate(new SetDataSourceFilters(SourceId, 1, [pattern], null));
        set.Errors.Select(e => e.PropertyName).ShouldBe(["Include[0]"]);
    }

    [Fact]
    public void Removal_needs_retain_or_delete()
    {
        new RemoveDataSourceValidator().Validate(new RemoveDataSource(SourceId, null)).Errors.Select(e => e.PropertyName).ShouldBe(["Data"]);
        new RemoveDataSourceValidator().Validate(new RemoveDataSource(SourceId, (DataOnRemoval)7)).IsValid.ShouldBeFalse();
        new RemoveDataSourceValidator().Validate(new RemoveDataSource(SourceId, DataOnRemoval.Retain)).IsValid.ShouldBeTrue();
    }
}
