using Backup.Commands.Alerts;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Deciders;

public sealed class AlertTests
{
    private static readonly Guid Subject = Guid.Parse("0195f3a0-0000-7000-8000-0000000000d1");
    private static readonly AlertScope Scope = new(DataSourceId: Subject);

    private static Alert? Fold(params object[] events) => events.Aggregate((Alert?)null, Alert.Next);

    [Fact]
    public void The_id_is_derived_from_kind_and_subject_so_every_worker_decides_on_the_same_stream()
    {
        Alert.IdFor(AlertKind.MissedBackup, Subject).ShouldBe(Alert.IdFor(AlertKind.MissedBackup, Guid.Parse(Subject.ToString())));
        Alert.IdFor(AlertKind.MissedBackup, Subject).ShouldNotBe(Alert.IdFor(AlertKind.BackupFailed, Subject));
        Alert.IdFor(AlertKind.MissedBackup, Subject).ShouldNotBe(Alert.IdFor(AlertKind.MissedBackup, Guid.NewGuid()));
    }

    [Fact]
    public void A_condition_that_persists_is_raised_once()
    {
        var raised = Alert.Raise(null, AlertKind.MissedBackup, Subject, Scope, "no recovery point", Clock.Now).ShouldNotBeNull();

        raised.AlertId.ShouldBe(Alert.IdFor(AlertKind.MissedBackup, Subject));
        raised.DataSourceId.ShouldBe(Subject);
        Alert.Raise(Fold(raised), AlertKind.MissedBackup, Subject, Scope, "still none", Clock.Now.AddMinutes(1)).ShouldBeNull();
    }

    [Fact]
    public void Only_an_active_alert_is_resolved_and_a_resolved_one_can_come_back()
    {
        Alert.Resolve(null, "nothing to resolve", Clock.Now).ShouldBeNull();
        var raised = Alert.Raise(null, AlertKind.AgentLost, Subject, Scope, "quiet", Clock.Now)!;
        var resolved = Alert.Resolve(Fold(raised), "polled", Clock.Now.AddMinutes(5)).ShouldNotBeNull();
        resolved.ShouldBe(new AlertResolved(raised.AlertId, AlertKind.AgentLost, "polled", Clock.Now.AddMinutes(5)));
        Alert.Resolve(Fold(raised, resolved), "again", Clock.Now).ShouldBeNull();

        var again = Alert.Raise(Fold(raised, resolved), AlertKind.AgentLost, Subject, Scope, "quiet again", Clock.Now.AddHours(1)).ShouldNotBeNull();
        var state = Fold(raised, resolved, again)!;
        state.Active.ShouldBeTrue();
        state.Occurrences.ShouldBe(2);
    }
}
