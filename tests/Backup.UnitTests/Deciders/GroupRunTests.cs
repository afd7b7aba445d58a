using Backup.Commands.Common;
using Backup.Commands.GroupRuns;
using Backup.Commands.ProtectionGroups;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

/// <summary>The group run's decisions: what the workers append as its members start and end, once each, and its completion.</summary>
public sealed class GroupRunTests
{
    private static readonly Guid RunId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d1");
    private static readonly Guid GroupId = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d2");
    private static readonly Guid Web = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d3");
    private static readonly Guid Db = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d4");

    private static GroupRun Requested() => GroupRun.Next(null, new GroupRunRequested(RunId, GroupId,
        [new GroupRunMember(Guid.NewGuid(), Web, Guid.NewGuid()), new GroupRunMember(Guid.NewGuid(), Db, Guid.NewGuid())], "user:ada", Clock.Now))!;

    private static GroupRun Apply(GroupRun run, IEnumerable<object> events) => events.Aggregate(run, (state, e) => GroupRun.Next(state, e)!);

    [Fact]
    public void A_member_starts_once_however_often_its_agent_claims_it_again()
    {
        var run = Requested();
        var started = run.MemberStarted(Web, Clock.Now.AddSeconds(1));
        started.ShouldBe([new GroupRunMemberStarted(RunId, Web, Clock.Now.AddSeconds(1))]);
        Apply(run, started).MemberStarted(Web, Clock.Now.AddMinutes(3)).ShouldBeEmpty("a re-run after a lost lease is the same member");
        run.MemberStarted(Guid.NewGuid(), Clock.Now).ShouldBeEmpty("not a member");
    }

    [Fact]
    public void The_run_completes_when_its_last_member_ends_counting_the_failed_ones_and_a_redelivered_end_changes_nothing()
    {
        var run = Requested();
        var web = run.MemberEnded(Web, null, Clock.Now.AddMinutes(1));
        web.ShouldBe([new GroupRunMemberEnded(RunId, Web, null, Clock.Now.AddMinutes(1))], "one member still running: no completion yet");
        run = Apply(run, web);
        run.MemberEnded(Web, null, Clock.Now.AddMinutes(2)).ShouldBeEmpty("the same end, delivered again");

        var db = run.MemberEnded(Db, "agent did not pick the job up", Clock.Now.AddMinutes(5));

        db.ShouldBe([
            new GroupRunMemberEnded(RunId, Db, "agent did not pick the job up", Clock.Now.AddMinutes(5)),
            new GroupRunCompleted(RunId, Succeeded: 1, Failed: 1, Clock.Now.AddMinutes(5)),
        ]);
        Apply(run, db).Completed.ShouldBeTrue();
    }

    [Fact]
    public void A_group_that_does_not_exist_or_protects_nothing_cannot_run()
    {
        Should.Throw<NotFoundException>(() => GroupRun.CheckCanRun(null, GroupId));
        var empty = ProtectionGroup.Next(null, ProtectionGroup.Create(GroupId, "empty", Clock.Now));
        Should.Throw<ConflictException>(() => GroupRun.CheckCanRun(empty, GroupId)).Message.ShouldContain("protects no data source");
    }
}
