using System.Globalization;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Projections.Compliance;

namespace Backup.UnitTests.Compliance;

/// <summary>The pure evaluation behind the compliance view: what makes a data source compliant at an instant, and why not.</summary>
public sealed class ComplianceEvaluationTests
{
    private static DateTimeOffset Utc(string iso) => DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture);

    /// <summary>Recovery points at 08:00 and 20:00 New York time every day, kept 5 days, synced every 15 minutes.</summary>
    private static readonly ShortTermPolicy TwiceADay = new(5, SynchronisationMode.Interval, 15,
        [new TimeOnly(8, 0), new TimeOnly(20, 0)], Enum.GetValues<DayOfWeek>(), "America/New_York");

    private static readonly OnlinePolicy DailyAtNoon = new([new TimeOnly(12, 0)], OnlineSchedule.Daily, [], new GfsRetention(30, null, null, null));

    private static ComplianceFacts Facts(string protectedAt, params string[] points) => new()
    {
        DataSourceId = Guid.NewGuid(), GroupId = Guid.NewGuid(), Path = "/srv/files", ProtectedAt = Utc(protectedAt),
        ShortTerm = TwiceADay, ShortTermSetAt = Utc(protectedAt), RecoveryPointsKeptOnDisk = 10,
        OnDisk = [.. points.Select(p => new HeldPoint(Guid.NewGuid(), Utc(p)))],
        LastRecoveryPointAt = points.Length == 0 ? null : points.Select(Utc).Max(),
        NewestVaultPointCreatedAt = points.Length == 0 ? null : points.Select(Utc).Max(),
    };

    [Fact]
    public void The_point_of_the_last_scheduled_time_meets_the_rpo_and_a_job_gets_half_an_hour_to_deliver_the_next()
    {
        // 08:00 EST = 13:00Z. The 13:05Z point answers it; at 01:20Z (20:20 local) the 20:00 point is still within its allowance.
        var facts = Facts("2026-03-01T00:00Z", "2026-03-02T13:05Z");

        ComplianceEvaluation.Evaluate(facts, Utc("2026-03-03T01:20Z")).Compliant.ShouldBeTrue();

        var late = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-03T01:31Z"));
        late.Compliant.ShouldBeFalse();
        late.Rpo.ExpectedAt.ShouldBe(Utc("2026-03-03T01:00Z"));
        late.Reasons.ShouldHaveSingleItem().ShouldBe(
            "last recovery point 12h 26m old; policy syncs every 15 min and takes recovery points at 08:00, 20:00 (America/New_York) every day, "
            + "and the one due at 2026-03-03T01:00Z is missing");
    }

    [Fact]
    public void Nothing_is_due_before_the_first_scheduled_time_after_protection()
    {
        var facts = Facts("2026-03-02T13:10Z");

        ComplianceEvaluation.Evaluate(facts, Utc("2026-03-03T01:29Z")).Compliant.ShouldBeTrue();
        ComplianceEvaluation.Evaluate(facts, Utc("2026-03-03T01:31Z")).Reasons.ShouldHaveSingleItem().ShouldStartWith("no recovery point yet;");
    }

    [Fact]
    public void A_group_without_a_short_term_policy_is_not_compliant()
    {
        var facts = Facts("2026-03-01T00:00Z") with { ShortTerm = null, ShortTermSetAt = null };

        var result = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-01T00:01Z"));

        result.Compliant.ShouldBeFalse();
        result.Reasons.ShouldHaveSingleItem().ShouldContain("no short-term policy");
    }

    [Fact]
    public void A_point_held_past_the_retention_range_beyond_the_workers_allowance_is_over_retained()
    {
        var facts = Facts("2026-03-01T00:00Z", "2026-03-01T13:00Z", "2026-03-06T01:00Z") with { RecoveryPointsKeptOnDisk = 10 };

        // Out of the 5-day range at 03-06T13:00Z; the retention worker has two hours.
        var onTime = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-06T14:59Z"));
        onTime.Retention.Met.ShouldBeTrue();
        onTime.Retention.RecoveryPointsOnDisk.ShouldBe(2);
        onTime.Retention.OldestOnDiskAt.ShouldBe(Utc("2026-03-01T13:00Z"));

        var overdue = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-06T15:01Z"));
        overdue.Retention.Met.ShouldBeFalse();
        overdue.Retention.Overdue.ShouldBe(1);
        overdue.Reasons.ShouldContain(r => r.StartsWith("1 recovery point(s) held on disk beyond the retention policy (5 days", StringComparison.Ordinal));
    }

    [Fact]
    public void More_than_64_points_on_disk_are_over_retained_once_the_allowance_has_passed()
    {
        var start = Utc("2026-03-01T00:00Z");
        var facts = Facts("2026-02-28T00:00Z") with
        {
            ShortTerm = TwiceADay with { RetentionDays = 448 },
            OnDisk = [.. Enumerable.Range(0, 66).Select(i => new HeldPoint(Guid.NewGuid(), start.AddMinutes(i)))],
            LastRecoveryPointAt = start.AddMinutes(65),
            NewestVaultPointCreatedAt = start.AddMinutes(65),
        };

        ComplianceEvaluation.Evaluate(facts, start.AddMinutes(64) + TimeSpan.FromHours(2)).Retention.Overdue.ShouldBe(0);
        ComplianceEvaluation.Evaluate(facts, start.AddMinutes(64) + TimeSpan.FromHours(2) + TimeSpan.FromMinutes(1)).Retention.Overdue.ShouldBe(1);
        ComplianceEvaluation.Evaluate(facts, start.AddMinutes(65) + TimeSpan.FromHours(3)).Retention.Overdue.ShouldBe(2);
    }

    [Fact]
    public void The_verdict_without_reasons_is_the_verdict_with_them_and_compliant_means_no_reason()
    {
        var hourly = Enumerable.Range(0, 70).Select(i => Utc("2026-03-01T00:00Z").AddHours(6 * i).ToString("O")).ToArray();
        ComplianceFacts[] cases =
        [
            Facts("2026-03-01T00:00Z", "2026-03-02T13:05Z"),
            Facts("2026-03-02T13:10Z"),
            Facts("2026-03-01T00:00Z") with { ShortTerm = null, ShortTermSetAt = null },
            Facts("2026-02-28T00:00Z", hourly) with { Online = DailyAtNoon, OnlineSetAt = Utc("2026-02-28T00:00Z") },
            Facts("2026-03-01T00:00Z", "2026-03-02T13:05Z") with
            {
                Damaged = [new InconsistentCopy(Guid.NewGuid(), StorageTier.Vault, 2, Utc("2026-03-02T14:00Z"))],
            },
        ];
        var verdicts = new HashSet<bool>();
        foreach (var facts in cases)
            foreach (var at in new[] { "2026-03-02T14:00Z", "2026-03-03T01:20Z", "2026-03-03T01:31Z", "2026-03-18T05:00Z" })
            {
                var full = ComplianceEvaluation.Evaluate(facts, Utc(at));
                var brief = ComplianceEvaluation.Evaluate(facts, Utc(at), explain: false);
                full.Compliant.ShouldBe(full.Reasons.Count == 0);
                brief.Compliant.ShouldBe(full.Compliant);
                brief.Reasons.ShouldBeEmpty();
                (brief.Rpo, brief.Retention, brief.Online, brief.Consistency.Consistent)
                    .ShouldBe((full.Rpo, full.Retention, full.Online, full.Consistency.Consistent));
                verdicts.Add(full.Compliant);
            }
        verdicts.Count.ShouldBe(2, "the cases must include compliant and non-compliant ones");
    }

    [Fact]
    public void A_snapshot_row_keeps_held_points_as_times_and_evaluates_as_the_facts_with_their_ids_do()
    {
        // 70 points every 6 hours: some past the range, some beyond the 64-point cap; two created at the same instant.
        var times = Enumerable.Range(0, 70).Select(i => Utc("2026-03-01T00:00Z").AddHours(6 * i).ToString("O")).Append("2026-03-10T00:00Z").ToArray();
        var facts = Facts("2026-02-28T00:00Z", times) with { Online = DailyAtNoon, OnlineSetAt = Utc("2026-02-28T00:00Z") };
        var row = facts.ForSnapshot();
        row.OnDisk.ShouldBeEmpty();
        row.OnDiskTicks!.Count.ShouldBe(times.Length);
        var stored = System.Text.Json.JsonSerializer.Deserialize<ComplianceFacts>(
            System.Text.Json.JsonSerializer.Serialize(row, ComplianceProjection.Json), ComplianceProjection.Json)!;

        foreach (var at in new[] { "2026-03-18T00:00Z", "2026-03-18T05:00Z", "2026-03-19T13:00Z" })
        {
            var withIds = ComplianceEvaluation.Evaluate(facts, Utc(at));
            var fromRow = ComplianceEvaluation.Evaluate(stored, Utc(at));
            fromRow.Retention.ShouldBe(withIds.Retention);
            fromRow.Online.ShouldBe(withIds.Online);
            fromRow.Reasons.ShouldBe(withIds.Reasons);
        }
        ComplianceEvaluation.Evaluate(facts, Utc("2026-03-18T05:00Z")).Retention.Overdue.ShouldBeGreaterThan(0, "the case must exercise the cap");
    }

    [Fact]
    public void The_vault_must_hold_the_point_that_existed_when_the_online_backup_fell_due()
    {
        // Online at 12:00 New York = 17:00Z; the 13:05Z point existed then, so the copy is due by 19:00Z.
        var facts = Facts("2026-03-01T00:00Z", "2026-03-01T13:05Z", "2026-03-02T13:05Z") with
        {
            Online = DailyAtNoon, OnlineSetAt = Utc("2026-03-01T00:00Z"), NewestVaultPointCreatedAt = Utc("2026-03-01T13:05Z"),
            LastRecoveryPointAt = Utc("2026-03-02T13:05Z"),
        };

        var before = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-02T18:59Z"));
        before.Online.Met.ShouldBeTrue();
        before.Online.LagMinutes!.Value.ShouldBe(29 * 60 + 54, 0.1);

        var after = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-02T19:01Z"));
        after.Online.Met.ShouldBeFalse();
        after.Online.ExpectedCreatedAt.ShouldBe(Utc("2026-03-02T13:05Z"));
        after.Reasons.ShouldContain("the newest vault copy is of a recovery point 1d 5h old; the online backup due at 2026-03-02T17:00Z "
            + "(online backups daily at 12:00) should have copied the one created at 2026-03-02T13:05Z");
    }

    [Fact]
    public void Without_an_online_policy_every_point_is_expected_in_the_vault_within_the_copy_allowance()
    {
        var facts = Facts("2026-03-01T00:00Z", "2026-03-02T13:05Z") with { NewestVaultPointCreatedAt = null };

        ComplianceEvaluation.Evaluate(facts, Utc("2026-03-02T15:04Z")).Online.Met.ShouldBeTrue();
        var late = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-02T15:06Z"));
        late.Online.Met.ShouldBeFalse();
        late.Reasons.ShouldContain(r => r.StartsWith("no recovery point has been copied to the vault", StringComparison.Ordinal));
    }

    [Fact]
    public void A_damaged_copy_makes_the_data_source_inconsistent_with_the_point_and_tier_named()
    {
        var point = Guid.NewGuid();
        var facts = Facts("2026-03-01T00:00Z", "2026-03-02T13:05Z") with
        {
            Damaged = [new InconsistentCopy(point, StorageTier.Vault, 2, Utc("2026-03-02T14:00Z"))],
        };

        var result = ComplianceEvaluation.Evaluate(facts, Utc("2026-03-02T14:30Z"));

        result.Consistency.Consistent.ShouldBeFalse();
        result.Reasons.ShouldHaveSingleItem().ShouldBe($"the vault copy of recovery point {point} was found damaged (2 pack(s)) at 2026-03-02T14:00Z");
    }

    [Fact]
    public void A_period_counts_each_scheduled_time_without_a_point_under_the_policy_in_force_then()
    {
        var facts = Facts("2026-03-01T02:00Z");
        var hourly = TwiceADay with { RecoveryPointTimes = [.. Enumerable.Range(0, 24).Select(h => new TimeOnly(h, 0))], TimeZone = "UTC" };
        var changes = new[] { new FactsChange(Utc("2026-03-02T00:00Z"), facts with { ShortTerm = hourly, ShortTermSetAt = Utc("2026-03-02T00:00Z") }) };
        // Protected at 02:00Z: twice a day (08:00 and 20:00 New York = 13:00Z and 01:00Z) until the change to hourly at 03-02T00:00Z.
        var created = new[] { Utc("2026-03-01T13:10Z"), Utc("2026-03-02T00:30Z"), Utc("2026-03-02T01:05Z"), Utc("2026-03-02T03:00Z") };

        var period = CompliancePeriod.Evaluate(facts, changes, created, Utc("2026-03-01T00:00Z"), Utc("2026-03-02T04:10Z"));

        // Twice-a-day slot 13:00Z taken; hourly slots 00:00 to 03:00 (04:00 is within the allowance of the end): 02:00 missed.
        period.ExpectedRecoveryPoints.ShouldBe(5);
        period.RecoveryPointsCreated.ShouldBe(4);
        period.Missed.ShouldBe([Utc("2026-03-02T02:00Z")]);
    }

    [Fact]
    public void A_period_counts_each_utc_date_a_damaged_copy_touched()
    {
        var facts = Facts("2026-03-01T00:00Z");
        var damaged = facts with { Damaged = [new InconsistentCopy(Guid.NewGuid(), StorageTier.Disk, 1, Utc("2026-03-02T22:00Z"))] };
        var changes = new[] { new FactsChange(Utc("2026-03-02T22:00Z"), damaged), new FactsChange(Utc("2026-03-04T00:00Z"), facts) };

        var period = CompliancePeriod.Evaluate(facts, changes, [], Utc("2026-03-01T00:00Z"), Utc("2026-03-10T00:00Z"));

        period.InconsistentDays.ShouldBe(2);
        period.InconsistentDates.ShouldBe([new DateOnly(2026, 3, 2), new DateOnly(2026, 3, 3)]);
    }
}
