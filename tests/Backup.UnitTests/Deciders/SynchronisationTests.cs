using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.Synchronising;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class SynchronisationTests
{
    private static readonly Guid SyncId = Guid.Parse("0195f3a0-0000-7000-8000-0000000005c1");
    private static readonly Guid SourceId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d1");
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");
    private static readonly Guid OtherAgent = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a2");
    private const string Pack = "1111111111111111111111111111111111111111111111111111111111111111";

    private static Synchronisation Fold(params object[] events) => events.Aggregate((Synchronisation?)null, Synchronisation.Next)!;

    private static SyncRequested Requested() => new(SyncId, SourceId, Guid.NewGuid(), AgentId, "/srv/data", "scheduler", Clock.Now);

    private static Synchronisation Running() => Fold(Requested(), new SyncStarted(SyncId, AgentId, Clock.Now));

    [Fact]
    public void A_requested_synchronisation_is_started_by_its_own_agent_once()
    {
        var started = JobLifecycle.Start<Synchronisation>(Fold(Requested()), SyncId, AgentId, Clock.Now);

        started.ShouldBe(new SyncStarted(SyncId, AgentId, Clock.Now));
        Should.Throw<ForbiddenException>(() => JobLifecycle.Start<Synchronisation>(Fold(Requested()), SyncId, OtherAgent, Clock.Now));
        Should.Throw<ConflictException>(() => JobLifecycle.Start<Synchronisation>(Running(), SyncId, AgentId, Clock.Now));
        Should.Throw<NotFoundException>(() => JobLifecycle.Start<Synchronisation>(null, SyncId, AgentId, Clock.Now)).Id.ShouldBe(SyncId);
    }

    [Fact]
    public void A_pack_is_one_disk_write_however_often_the_agent_retries_its_upload()
    {
        var written = JobLifecycle.Running<Synchronisation>(Running(), SyncId, AgentId).RecordPack(Pack, 100, 3, Clock.Now);

        written.ShouldBe(new SyncPackWrittenToDisk(SyncId, Pack, 100, 3, Clock.Now));
        JobLifecycle.Running<Synchronisation>(Fold(Requested(), new SyncStarted(SyncId, AgentId, Clock.Now), written!), SyncId, AgentId).RecordPack(Pack, 100, 3, Clock.Now).ShouldBeNull();
        Should.Throw<ConflictException>(() => JobLifecycle.Running<Synchronisation>(Fold(Requested()), SyncId, AgentId).RecordPack(Pack, 100, 3, Clock.Now));
        Should.Throw<ForbiddenException>(() => JobLifecycle.Running<Synchronisation>(Running(), SyncId, OtherAgent).RecordPack(Pack, 100, 3, Clock.Now));
    }

    [Fact]
    public void Only_a_running_synchronisation_of_its_own_agent_completes_and_then_it_has_ended()
    {
        IReadOnlyList<string> packs = [Pack];
        var done = Synchronisation.Complete(Running(), SyncId, AgentId, 3, 1, 0, 6_000, packs, 6_100, Clock.Now);

        done.ShouldBe(new ReplicaSynchronised(SyncId, SourceId, 3, 1, 0, 6_000, packs, 6_100, Clock.Now));
        var ended = Synchronisation.Next(Running(), done)!;
        ended.Status.ShouldBe(SyncStatus.Synchronised);
        Should.Throw<ConflictException>(() => Synchronisation.Complete(ended, SyncId, AgentId, 3, 1, 0, 6_000, [Pack], 6_100, Clock.Now));
        Should.Throw<ConflictException>(() => JobLifecycle.Fail<Synchronisation>(ended, SyncId, AgentId, "too late", Clock.Now));
        Should.Throw<ForbiddenException>(() => Synchronisation.Complete(Running(), SyncId, OtherAgent, 3, 1, 0, 6_000, [Pack], 6_100, Clock.Now));
    }

    [Fact]
    public void A_lost_lease_queues_it_again_and_the_last_allowed_expiry_fails_it_as_agent_lost()
    {
        var options = new JobLeaseOptions { MaxAttempts = 2 };
        var first = JobLifecycle.ExpireLease<Synchronisation>(Running(), SyncId, options, Clock.Now);
        first[1].ShouldBeOfType<JobRequeued>().Attempt.ShouldBe(1);

        var again = Fold([Requested(), new SyncStarted(SyncId, AgentId, Clock.Now), .. first, new SyncStarted(SyncId, AgentId, Clock.Now)]);
        var last = JobLifecycle.ExpireLease<Synchronisation>(again, SyncId, options, Clock.Now);
        last[1].ShouldBeOfType<SyncFailed>().Reason.ShouldBe(JobLifecycle.AgentLostReason(2));
    }

    [Fact]
    public void A_release_by_its_stopping_agent_queues_it_again_and_a_waiting_one_is_cancelled_when_its_source_goes()
    {
        var released = JobLifecycle.Release<Synchronisation>(Running(), SyncId, AgentId, "agent stopping", Clock.Now);
        Synchronisation.Next(Running(), released)!.Status.ShouldBe(SyncStatus.Requested);
        Should.Throw<ForbiddenException>(() => JobLifecycle.Release<Synchronisation>(Running(), SyncId, OtherAgent, "x", Clock.Now));

        JobLifecycle.Cancel<Synchronisation>(Fold(Requested()), "removed", Clock.Now).ShouldBe(new SyncFailed(SyncId, "removed", Clock.Now));
        JobLifecycle.Cancel<Synchronisation>(Running(), "removed", Clock.Now).ShouldBeNull("a running one may finish");
    }
}
