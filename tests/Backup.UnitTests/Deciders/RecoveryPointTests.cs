using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class RecoveryPointTests
{
    private static readonly Guid PointId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1");
    private static readonly Guid DataSourceId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d1");
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");
    private static readonly Guid OtherAgent = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a2");
    private static readonly string PackA = new('a', 64);
    private static readonly string PackB = new('b', 64);

    private static RecoveryPoint Fold(params object[] events) =>
        events.Aggregate((RecoveryPoint?)null, RecoveryPoint.Next)!;

    private static BackupRequested Requested() =>
        new(PointId, DataSourceId, Guid.NewGuid(), AgentId, "/srv/data", "alice", Clock.Now);

    private static RecoveryPoint RequestedPoint() => Fold(Requested());

    private static RecoveryPoint RunningPoint() => Fold(Requested(), new BackupStarted(PointId, AgentId, Clock.Now));

    private static RecoveryPointCreated Created(RecoveryPoint rp) =>
        RecoveryPoint.Complete(rp, PointId, AgentId, 3, 1, 0, 100, [PackA], 120, new string('e', 64), Clock.Now);

    [Fact]
    public void Requested_backup_can_be_started_by_its_agent()
    {
        var started = JobLifecycle.Start<RecoveryPoint>(RequestedPoint(), PointId, AgentId, Clock.Now);

        started.ShouldBe(new BackupStarted(PointId, AgentId, Clock.Now));
        RecoveryPoint.Next(RequestedPoint(), started)!.Status.ShouldBe(RecoveryPointStatus.Running);
    }

    [Fact]
    public void Another_agent_cannot_start_the_backup()
    {
        Should.Throw<ForbiddenException>(() => JobLifecycle.Start<RecoveryPoint>(RequestedPoint(), PointId, OtherAgent, Clock.Now));
    }

    [Fact]
    public void Backup_cannot_be_started_twice()
    {
        Should.Throw<ConflictException>(() => JobLifecycle.Start<RecoveryPoint>(RunningPoint(), PointId, AgentId, Clock.Now));
    }

    [Fact]
    public void Unknown_recovery_point_is_not_found()
    {
        Should.Throw<NotFoundException>(() => JobLifecycle.Start<RecoveryPoint>(null, PointId, AgentId, Clock.Now)).Id.ShouldBe(PointId);
        Should.Throw<NotFoundException>(() => JobLifecycle.Running<RecoveryPoint>(null, PointId, AgentId).RecordPack(PackA, 1, 1, Clock.Now));
        Should.Throw<NotFoundException>(() => JobLifecycle.Fail<RecoveryPoint>(null, PointId, AgentId, "x", Clock.Now));
    }

    [Fact]
    public void Pack_written_while_running_is_recorded_with_its_hash()
    {
        var written = JobLifecycle.Running<RecoveryPoint>(RunningPoint(), PointId, AgentId).RecordPack(PackA, 4096, 7, Clock.Now);

        written.ShouldBe(new PackWrittenToDisk(PointId, PackA, 4096, 7, PackA, Clock.Now));
    }

    [Fact]
    public void Pack_uploaded_again_is_not_a_second_disk_write()
    {
        var rp = RecoveryPoint.Next(RunningPoint(), new PackWrittenToDisk(PointId, PackA, 4096, 7, PackA, Clock.Now));

        JobLifecycle.Running<RecoveryPoint>(rp, PointId, AgentId).RecordPack(PackA, 4096, 7, Clock.Now).ShouldBeNull();
        JobLifecycle.Running<RecoveryPoint>(rp, PointId, AgentId).RecordPack(PackB, 10, 1, Clock.Now).ShouldNotBeNull();
    }

    [Fact]
    public void Packs_are_accepted_only_while_running_and_only_from_the_owner()
    {
        Should.Throw<ConflictException>(() => JobLifecycle.Running<RecoveryPoint>(RequestedPoint(), PointId, AgentId).RecordPack(PackA, 1, 1, Clock.Now));
        Should.Throw<ForbiddenException>(() => JobLifecycle.Running<RecoveryPoint>(RunningPoint(), PointId, OtherAgent).RecordPack(PackA, 1, 1, Clock.Now));
        var created = Fold(Requested(), new BackupStarted(PointId, AgentId, Clock.Now), Created(RunningPoint()));
        Should.Throw<ConflictException>(() => JobLifecycle.Running<RecoveryPoint>(created, PointId, AgentId).RecordPack(PackA, 1, 1, Clock.Now));
    }

    [Fact]
    public void Completing_a_running_backup_creates_the_recovery_point()
    {
        var created = RecoveryPoint.Complete(RunningPoint(), PointId, AgentId, 3, 2, 1, 100, [PackA, PackB], 120, new string('e', 64), Clock.Now);

        created.RecoveryPointId.ShouldBe(PointId);
        created.DataSourceId.ShouldBe(DataSourceId);
        created.Files.ShouldBe(3);
        created.Directories.ShouldBe(2);
        created.SkippedItems.ShouldBe(1);
        created.BytesRead.ShouldBe(100);
        created.BytesStored.ShouldBe(120);
        created.PackIds.ShouldBe([PackA, PackB]);
    }

    [Fact]
    public void Only_a_running_backup_of_its_own_agent_can_complete()
    {
        Should.Throw<ConflictException>(() => Created(RequestedPoint()));
        Should.Throw<ForbiddenException>(() =>
            RecoveryPoint.Complete(RunningPoint(), PointId, OtherAgent, 0, 0, 0, 0, [], 0, new string('e', 64), Clock.Now));
        var done = RecoveryPoint.Next(RunningPoint(), Created(RunningPoint()));
        Should.Throw<ConflictException>(() => Created(done!));
    }

    [Fact]
    public void Requested_or_running_backup_can_fail()
    {
        JobLifecycle.Fail<RecoveryPoint>(RequestedPoint(), PointId, AgentId, "disk full", Clock.Now)
            .ShouldBe(new RecoveryPointFailed(PointId, "disk full", Clock.Now));
        JobLifecycle.Fail<RecoveryPoint>(RunningPoint(), PointId, AgentId, "disk full", Clock.Now).ShouldBeOfType<RecoveryPointFailed>().Reason.ShouldBe("disk full");
    }

    [Fact]
    public void Ended_backup_cannot_fail()
    {
        var created = RecoveryPoint.Next(RunningPoint(), Created(RunningPoint()));
        Should.Throw<ConflictException>(() => JobLifecycle.Fail<RecoveryPoint>(created, PointId, AgentId, "late", Clock.Now));

        var failed = RecoveryPoint.Next(RunningPoint(), new RecoveryPointFailed(PointId, "x", Clock.Now));
        Should.Throw<ConflictException>(() => JobLifecycle.Fail<RecoveryPoint>(failed, PointId, AgentId, "again", Clock.Now));
    }

    [Fact]
    public void Another_agent_cannot_fail_the_backup()
    {
        Should.Throw<ForbiddenException>(() => JobLifecycle.Fail<RecoveryPoint>(RunningPoint(), PointId, OtherAgent, "no", Clock.Now));
    }

    [Fact]
    public void Folding_a_whole_backup_gives_a_created_point_with_its_packs()
    {
        var final = Fold(
            Requested(),
            new BackupStarted(PointId, AgentId, Clock.Now),
            new PackWrittenToDisk(PointId, PackA, 10, 1, PackA, Clock.Now),
            new PackWrittenToDisk(PointId, PackB, 20, 2, PackB, Clock.Now),
            new PackWrittenToDisk(PointId, PackA, 10, 1, PackA, Clock.Now),
            new RecoveryPointCreated(PointId, DataSourceId, 3, 1, 0, 30, 30, [PackA, PackB], new string('e', 64), Clock.Now));

        final.Id.ShouldBe(PointId);
        final.DataSourceId.ShouldBe(DataSourceId);
        final.AgentId.ShouldBe(AgentId);
        final.Status.ShouldBe(RecoveryPointStatus.Created);
        final.PacksWritten.OrderBy(p => p, StringComparer.Ordinal).ShouldBe([PackA, PackB]);
        final.PackIds.ShouldBe([PackA, PackB]);
    }

    [Fact]
    public void Folding_a_failed_backup_gives_a_failed_point()
    {
        var final = Fold(Requested(), new BackupStarted(PointId, AgentId, Clock.Now), new RecoveryPointFailed(PointId, "boom", Clock.Now));

        final.Status.ShouldBe(RecoveryPointStatus.Failed);
        final.PackIds.ShouldBeEmpty();
    }

    [Fact]
    public void Recording_a_pack_does_not_change_the_state_it_was_decided_from()
    {
        var running = RunningPoint();

        var after = RecoveryPoint.Next(running, new PackWrittenToDisk(PointId, PackA, 10, 1, PackA, Clock.Now))!;

        after.PacksWritten.ShouldContain(PackA);
        running.PacksWritten.ShouldBeEmpty();
    }

    [Fact]
    public void A_created_point_expires_once_per_tier_and_a_point_that_never_got_created_does_not()
    {
        var created = Fold(Requested(), new BackupStarted(PointId, AgentId, Clock.Now), Created(RunningPoint()));

        var fromDisk = RecoveryPoint.Expire(created, StorageTier.Disk, "older than the range", Clock.Now).ShouldNotBeNull();
        fromDisk.ShouldBe(new RecoveryPointExpired(PointId, StorageTier.Disk, "older than the range", Clock.Now));
        var afterDisk = RecoveryPoint.Next(created, fromDisk)!;
        RecoveryPoint.Expire(afterDisk, StorageTier.Disk, "again", Clock.Now).ShouldBeNull();
        RecoveryPoint.Expire(afterDisk, StorageTier.Vault, "gfs", Clock.Now).ShouldNotBeNull().Tier.ShouldBe(StorageTier.Vault);
        RecoveryPoint.Expire(RunningPoint(), StorageTier.Disk, "not created", Clock.Now).ShouldBeNull();
        RecoveryPoint.Expire(null, StorageTier.Disk, "unknown", Clock.Now).ShouldBeNull();
    }
}
