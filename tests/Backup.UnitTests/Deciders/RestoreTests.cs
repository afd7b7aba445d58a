using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class RestoreTests
{
    private static readonly Guid RestoreId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000f1");
    private static readonly Guid PointId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1");
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");
    private static readonly Guid OtherAgent = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a2");

    private static Restore Fold(params object[] events) => events.Aggregate((Restore?)null, Restore.Next)!;

    private static RestoreRequested Requested() =>
        new(RestoreId, PointId, Guid.NewGuid(), AgentId, StorageTier.Vault, "/restore/here", "alice", Clock.Now);

    private static Restore RequestedRestore() => Fold(Requested());

    private static Restore RunningRestore() => Fold(Requested(), new RestoreStarted(RestoreId, AgentId, Clock.Now));

    [Fact]
    public void Requested_restore_remembers_where_to_restore_from_and_to()
    {
        var restore = RequestedRestore();

        restore.ShouldBe(new Restore(RestoreId, PointId, AgentId, StorageTier.Vault, "/restore/here", JobLease.Requested));
    }

    [Fact]
    public void Requested_restore_can_be_started_by_its_agent()
    {
        var started = JobLifecycle.Start<Restore>(RequestedRestore(), RestoreId, AgentId, Clock.Now);

        started.ShouldBe(new RestoreStarted(RestoreId, AgentId, Clock.Now));
        Restore.Next(RequestedRestore(), started)!.Status.ShouldBe(RestoreStatus.Running);
    }

    [Fact]
    public void Restore_cannot_be_started_by_another_agent_or_twice()
    {
        Should.Throw<ForbiddenException>(() => JobLifecycle.Start<Restore>(RequestedRestore(), RestoreId, OtherAgent, Clock.Now));
        Should.Throw<ConflictException>(() => JobLifecycle.Start<Restore>(RunningRestore(), RestoreId, AgentId, Clock.Now));
        Should.Throw<NotFoundException>(() => JobLifecycle.Start<Restore>(null, RestoreId, AgentId, Clock.Now)).Id.ShouldBe(RestoreId);
    }

    [Fact]
    public void Running_restore_completes_with_its_totals()
    {
        var completed = Restore.Complete(RunningRestore(), RestoreId, AgentId, 12, 3456, 2, Clock.Now);

        completed.ShouldBe(new RestoreCompleted(RestoreId, PointId, 12, 3456, Clock.Now, 2));
        Restore.Next(RunningRestore(), completed)!.Status.ShouldBe(RestoreStatus.Completed);
    }

    [Fact]
    public void Only_a_running_restore_of_its_own_agent_can_complete()
    {
        Should.Throw<ConflictException>(() => Restore.Complete(RequestedRestore(), RestoreId, AgentId, 0, 0, 0, Clock.Now));
        Should.Throw<ForbiddenException>(() => Restore.Complete(RunningRestore(), RestoreId, OtherAgent, 0, 0, 0, Clock.Now));
        var completed = Fold(Requested(), new RestoreStarted(RestoreId, AgentId, Clock.Now), new RestoreCompleted(RestoreId, PointId, 1, 1, Clock.Now));
        Should.Throw<ConflictException>(() => Restore.Complete(completed, RestoreId, AgentId, 1, 1, 0, Clock.Now));
    }

    [Fact]
    public void Requested_or_running_restore_can_fail()
    {
        JobLifecycle.Fail<Restore>(RequestedRestore(), RestoreId, AgentId, "target not writable", Clock.Now)
            .ShouldBe(new RestoreFailed(RestoreId, PointId, "target not writable", Clock.Now));
        JobLifecycle.Fail<Restore>(RunningRestore(), RestoreId, AgentId, "pack corrupt", Clock.Now).ShouldBeOfType<RestoreFailed>().Reason.ShouldBe("pack corrupt");
        Should.Throw<ForbiddenException>(() => JobLifecycle.Fail<Restore>(RunningRestore(), RestoreId, OtherAgent, "x", Clock.Now));
    }

    [Fact]
    public void Ended_restore_cannot_fail()
    {
        var completed = Fold(Requested(), new RestoreStarted(RestoreId, AgentId, Clock.Now), new RestoreCompleted(RestoreId, PointId, 1, 1, Clock.Now));
        var failed = Fold(Requested(), new RestoreFailed(RestoreId, PointId, "x", Clock.Now));

        failed.Status.ShouldBe(RestoreStatus.Failed);
        Should.Throw<ConflictException>(() => JobLifecycle.Fail<Restore>(completed, RestoreId, AgentId, "late", Clock.Now));
        Should.Throw<ConflictException>(() => JobLifecycle.Fail<Restore>(failed, RestoreId, AgentId, "again", Clock.Now));
    }

    [Fact]
    public void Running_guard_gives_access_only_to_a_running_restore_of_the_agent()
    {
        JobLifecycle.Running<Restore>(RunningRestore(), RestoreId, AgentId).RecoveryPointId.ShouldBe(PointId);
        Should.Throw<ConflictException>(() => JobLifecycle.Running<Restore>(RequestedRestore(), RestoreId, AgentId));
        Should.Throw<ForbiddenException>(() => JobLifecycle.Running<Restore>(RunningRestore(), RestoreId, OtherAgent));
    }
}
