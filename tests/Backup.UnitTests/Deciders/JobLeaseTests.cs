using Backup.Commands.Common;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Restores;
using Backup.Storage.Contracts;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class JobLeaseTests
{
    private static readonly Guid PointId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000c1");
    private static readonly Guid RestoreId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000f1");
    private static readonly Guid AgentId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a1");
    private static readonly Guid OtherAgent = Guid.Parse("0195f3a0-0000-7000-8000-0000000000a2");

    private static readonly JobLeaseOptions Options = new()
    {
        MaxAttempts = 3, RetryBackoff = TimeSpan.FromSeconds(30), MaxRetryBackoff = TimeSpan.FromSeconds(50),
    };

    private static RecoveryPoint? Fold(params object[] events) => events.Aggregate((RecoveryPoint?)null, RecoveryPoint.Next);
    private static Restore? FoldRestore(params object[] events) => events.Aggregate((Restore?)null, Restore.Next);

    private static readonly object[] RunningBackup =
    [
        new BackupRequested(PointId, Guid.NewGuid(), Guid.NewGuid(), AgentId, "/srv", "alice", Clock.Now),
        new BackupStarted(PointId, AgentId, Clock.Now),
    ];

    private static readonly object[] RunningRestore =
    [
        new RestoreRequested(RestoreId, PointId, Guid.NewGuid(), AgentId, StorageTier.Disk, "/to", "alice", Clock.Now),
        new RestoreStarted(RestoreId, AgentId, Clock.Now),
    ];

    [Fact]
    public void First_expiry_of_a_running_backup_requeues_it_with_backoff_and_it_can_be_started_again()
    {
        var now = Clock.Now.AddMinutes(3);
        var events = JobLifecycle.ExpireLease<RecoveryPoint>(Fold(RunningBackup), PointId, Options, now);

        events.Length.ShouldBe(2);
        var expired = events[0].ShouldBeOfType<JobLeaseExpired>();
        expired.Attempt.ShouldBe(1);
        expired.AgentId.ShouldBe(AgentId);
        expired.Reason.ShouldNotBeNullOrWhiteSpace();
        events[1].ShouldBe(new JobRequeued(PointId, AgentId, 1, now.AddSeconds(30), now));

        var after = Fold([.. RunningBackup, .. events])!;
        after.Status.ShouldBe(RecoveryPointStatus.Requested);
        after.Lease.Expiries.ShouldBe(1);
        JobLifecycle.Start<RecoveryPoint>(after, PointId, AgentId, now).ShouldBe(new BackupStarted(PointId, AgentId, now));
    }

    [Fact]
    public void Backoff_doubles_per_attempt_up_to_the_cap()
    {
        JobLifecycle.Backoff(1, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(50)).ShouldBe(TimeSpan.FromSeconds(30));
        JobLifecycle.Backoff(2, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(50)).ShouldBe(TimeSpan.FromSeconds(50));
        JobLifecycle.Backoff(2, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5)).ShouldBe(TimeSpan.FromSeconds(20));
        JobLifecycle.Backoff(40, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(5)).ShouldBe(TimeSpan.FromMinutes(5));
    }

    [Fact]
    public void The_last_allowed_expiry_fails_the_backup_with_agent_lost()
    {
        var history = RunningBackup.ToList();
        for (var attempt = 1; attempt < Options.MaxAttempts; attempt++)
        {
            var requeue = JobLifecycle.ExpireLease<RecoveryPoint>(Fold([.. history]), PointId, Options, Clock.Now);
            requeue[^1].ShouldBeOfType<JobRequeued>().Attempt.ShouldBe(attempt);
            history.AddRange(requeue);
            history.Add(new BackupStarted(PointId, AgentId, Clock.Now));
        }

        var last = JobLifecycle.ExpireLease<RecoveryPoint>(Fold([.. history]), PointId, Options, Clock.Now);

        last[0].ShouldBeOfType<JobLeaseExpired>().Attempt.ShouldBe(3);
        last[1].ShouldBe(new RecoveryPointFailed(PointId, "agent lost: lease expired 3 times", Clock.Now));
        Fold([.. history, .. last])!.Status.ShouldBe(RecoveryPointStatus.Failed);
    }

    [Fact]
    public void Only_a_running_backup_has_a_lease_to_expire()
    {
        Should.Throw<ConflictException>(() => JobLifecycle.ExpireLease<RecoveryPoint>(Fold(RunningBackup[0]), PointId, Options, Clock.Now));
        Should.Throw<NotFoundException>(() => JobLifecycle.ExpireLease<RecoveryPoint>(null, PointId, Options, Clock.Now));
    }

    [Fact]
    public void A_restore_lease_expires_into_a_requeue_then_a_restore_failure()
    {
        var options = new JobLeaseOptions { MaxAttempts = 2 };
        var first = JobLifecycle.ExpireLease<Restore>(FoldRestore(RunningRestore), RestoreId, options, Clock.Now);
        first[1].ShouldBeOfType<JobRequeued>();
        var history = RunningRestore.Concat(first).Append(new RestoreStarted(RestoreId, AgentId, Clock.Now)).ToArray();
        FoldRestore(history[..4])!.Status.ShouldBe(RestoreStatus.Requested);

        var second = JobLifecycle.ExpireLease<Restore>(FoldRestore(history), RestoreId, options, Clock.Now);

        second[1].ShouldBe(new RestoreFailed(RestoreId, PointId, "agent lost: lease expired 2 times", Clock.Now));
    }

    [Fact]
    public void Heartbeat_only_by_the_owning_agent_while_the_job_runs()
    {
        Should.NotThrow(() => JobLifecycle.Running<RecoveryPoint>(Fold(RunningBackup), PointId, AgentId));
        Should.Throw<ForbiddenException>(() => JobLifecycle.Running<RecoveryPoint>(Fold(RunningBackup), PointId, OtherAgent));
        Should.Throw<ConflictException>(() => JobLifecycle.Running<RecoveryPoint>(Fold(RunningBackup[0]), PointId, AgentId));
        Should.Throw<NotFoundException>(() => JobLifecycle.Running<RecoveryPoint>(null, PointId, AgentId));
        var requeued = JobLifecycle.ExpireLease<RecoveryPoint>(Fold(RunningBackup), PointId, Options, Clock.Now);
        Should.Throw<ConflictException>(() => JobLifecycle.Running<RecoveryPoint>(Fold([.. RunningBackup, .. requeued]), PointId, AgentId));

        Should.NotThrow(() => JobLifecycle.Running<Restore>(FoldRestore(RunningRestore), RestoreId, AgentId));
        Should.Throw<ForbiddenException>(() => JobLifecycle.Running<Restore>(FoldRestore(RunningRestore), RestoreId, OtherAgent));
        Should.Throw<ConflictException>(() => JobLifecycle.Running<Restore>(FoldRestore(RunningRestore[0]), RestoreId, AgentId));
    }

    [Fact]
    public void A_released_backup_is_requested_again_at_once_and_counts_no_expiry()
    {
        var history = RunningBackup.ToList();
        history.AddRange(JobLifecycle.ExpireLease<RecoveryPoint>(Fold([.. history]), PointId, Options, Clock.Now));
        history.Add(new BackupStarted(PointId, AgentId, Clock.Now));

        var released = JobLifecycle.Release<RecoveryPoint>(Fold([.. history]), PointId, AgentId, "agent stopping", Clock.Now);

        released.ShouldBe(new JobReleased(PointId, AgentId, "agent stopping", Clock.Now));
        var after = Fold([.. history, released])!;
        after.Status.ShouldBe(RecoveryPointStatus.Requested);
        after.Lease.Expiries.ShouldBe(1, "a release is not an expiry");
        JobLifecycle.Start<RecoveryPoint>(after, PointId, AgentId, Clock.Now).ShouldBe(new BackupStarted(PointId, AgentId, Clock.Now));
        // The next expiry is the second, not the third: the release cost no attempt.
        var next = JobLifecycle.ExpireLease<RecoveryPoint>(Fold([.. history, released, new BackupStarted(PointId, AgentId, Clock.Now)]), PointId, Options, Clock.Now);
        next[0].ShouldBeOfType<JobLeaseExpired>().Attempt.ShouldBe(2);
    }

    [Fact]
    public void Only_the_owning_agent_releases_and_only_a_running_job()
    {
        Should.Throw<ForbiddenException>(() => JobLifecycle.Release<RecoveryPoint>(Fold(RunningBackup), PointId, OtherAgent, "agent stopping", Clock.Now));
        Should.Throw<ConflictException>(() => JobLifecycle.Release<RecoveryPoint>(Fold(RunningBackup[0]), PointId, AgentId, "agent stopping", Clock.Now));
        Should.Throw<NotFoundException>(() => JobLifecycle.Release<RecoveryPoint>(null, PointId, AgentId, "agent stopping", Clock.Now));
        var released = JobLifecycle.Release<RecoveryPoint>(Fold(RunningBackup), PointId, AgentId, "agent stopping", Clock.Now);
        Should.Throw<ConflictException>(() => JobLifecycle.Release<RecoveryPoint>(Fold([.. RunningBackup, released]), PointId, AgentId, "agent stopping", Clock.Now));

        var restoreReleased = JobLifecycle.Release<Restore>(FoldRestore(RunningRestore), RestoreId, AgentId, "agent stopping", Clock.Now);
        FoldRestore([.. RunningRestore, restoreReleased])!.Status.ShouldBe(RestoreStatus.Requested);
        Should.Throw<ForbiddenException>(() => JobLifecycle.Release<Restore>(FoldRestore(RunningRestore), RestoreId, OtherAgent, "agent stopping", Clock.Now));
        Should.Throw<ConflictException>(() => JobLifecycle.Release<Restore>(FoldRestore(RunningRestore[0]), RestoreId, AgentId, "agent stopping", Clock.Now));
    }

    [Fact]
    public void Every_kind_an_agent_runs_is_registered_once()
    {
        JobKinds.AgentWork.ShouldBe([JobKind.Backup, JobKind.Synchronisation, JobKind.Restore], ignoreOrder: true);
    }

    [Fact]
    public async Task A_queue_entry_of_a_kind_no_agent_runs_reads_as_no_job_so_it_neither_blocks_polls_nor_the_reaper()
    {
        // Such a kind never touches the store: there is no stream to read.
        var job = await ((Marten.IQuerySession)null!).LoadJobAsync(JobKind.VaultCopy, PointId, TestContext.Current.CancellationToken);

        job.Phase.ShouldBeNull("nothing to claim or expire");
        job.Cancel("not picked up", Clock.Now).ShouldBeNull("nothing to fail");
        Should.Throw<ConflictException>(() => job.RenewLease(AgentId)).Message.ShouldContain("VaultCopy");
        Should.Throw<ConflictException>(() => job.Start(AgentId, Clock.Now));
    }
}
