using System.Text.Json;
using Backup.Commands.DataSources;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.VaultTransfers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Backup.Projections.Compliance;
using Marten;
using Marten.Events;
using Npgsql;

namespace Backup.IntegrationTests.Compliance;

/// <summary>
/// The compliance history is derived from the events alone: rebuilding the projection (as after a schema change or a lost table)
/// gives back the same facts at every past instant, also when the events of one recovery point land on different daemon pages.
/// A schema of its own and a daemon of its own, so the rebuild disturbs no other test.
/// </summary>
public sealed class ComplianceRebuildTests : IAsyncLifetime
{
    private readonly string _schema = TestServices.NewSchema("compliance");
    private DocumentStore _store = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _store = DocumentStore.For(o => o.ConfigureCatalog(TestServices.Postgres, _schema));
        await _store.Storage.ApplyAllConfiguredChangesToDatabaseAsync();
    }

    public async ValueTask DisposeAsync()
    {
        _store.Dispose();
        await TestServices.DropSchemaAsync(_schema);
    }

    private async Task<long> SnapshotRowsAsync()
    {
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM \"{_schema}\".{ComplianceProjection.TableName}", connection);
        return (long)(await command.ExecuteScalarAsync(Ct))!;
    }

    private async Task<List<string>> HistoryAsync(Guid group, IEnumerable<DateTimeOffset> instants)
    {
        await using var session = _store.QuerySession();
        var history = new List<string>();
        foreach (var at in instants)
            history.Add(JsonSerializer.Serialize(await ComplianceSnapshots.ValidAtAsync(session, at, group, null, Ct), ComplianceProjection.Json));
        return history;
    }

    [Fact]
    public async Task Rebuilding_the_projection_gives_back_the_same_facts_at_every_past_instant()
    {
        var start = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero);
        var group = Guid.CreateVersion7();
        var agent = Guid.CreateVersion7();
        var sources = new[] { Guid.CreateVersion7(), Guid.CreateVersion7() };
        var policy = new ShortTermPolicy(2, SynchronisationMode.Interval, 60, [.. Enumerable.Range(0, 24).Select(h => new TimeOnly(h, 0))],
            Enum.GetValues<DayOfWeek>(), "UTC");
        await using (var session = _store.LightweightSession())
        {
            session.Events.StartStream<ProtectionGroup>(group, new ProtectionGroupCreated(group, "rebuild", start), new ShortTermPolicySet(group, policy, 48, start));
            foreach (var source in sources)
                session.Events.StartStream<DataSource>(source, new DataSourceProtected(source, group, agent, DataSourceKind.Folder, $"/srv/{source:N}", start));
            await session.SaveChangesAsync(Ct);
        }

        // A week of hourly points for both sources: each copied to the vault ten minutes later; each expired from disk two days on.
        var points = new List<(Guid Id, Guid Source, DateTimeOffset At)>();
        var held = new HashSet<Guid>();
        for (var hour = 1; hour <= 7 * 24; hour++)
        {
            await using var session = _store.LightweightSession();
            var at = start.AddHours(hour);
            var created = new List<(Guid Id, Guid Source, DateTimeOffset At)>();
            foreach (var source in sources)
            {
                var id = Guid.CreateVersion7();
                session.Events.StartStream<RecoveryPoint>(id,
                    new BackupRequested(id, source, group, agent, "/srv", "scheduler", at),
                    new BackupStarted(id, agent, at),
                    new RecoveryPointCreated(id, source, 1, 0, 0, 10, 10, [], new string('0', 64), at.AddMinutes(5)));
                var transfer = VaultTransfer.IdFor(id);
                session.Events.StartStream<VaultTransfer>(transfer,
                    new VaultTransferStarted(transfer, id, 0, at.AddMinutes(10)), new VaultTransferCompleted(transfer, id, 0, 0, at.AddMinutes(15)));
                created.Add((id, source, at));
            }
            var expiring = points.Where(p => p.At == at.AddHours(-48)).Select(p => p.Id).ToList();
            foreach (var id in expiring)
                session.Events.Append(id, new RecoveryPointExpired(id, StorageTier.Disk, "retention", at.AddMinutes(20)));
            if (hour % 50 == 0) continue; // every 50th hour nothing is recorded: no points, and no expiry either
            await session.SaveChangesAsync(Ct);
            points.AddRange(created);
            held.UnionWith(created.Select(p => p.Id));
            held.ExceptWith(expiring);
        }

        using var daemon = await _store.BuildProjectionDaemonAsync();
        await daemon.StartAllAsync();
        await _store.WaitForNonStaleProjectionDataAsync(TimeSpan.FromMinutes(2));
        var instants = Enumerable.Range(0, 60).Select(i => start.AddMinutes(i * 173 + 7)).ToList();
        var before = await HistoryAsync(group, instants);
        var rows = await SnapshotRowsAsync();

        // As if the table were lost: whatever the rebuild gives back comes from the events.
        await using (var connection = new NpgsqlConnection(TestServices.Postgres))
        {
            await connection.OpenAsync(Ct);
            await using var wipe = new NpgsqlCommand($"DELETE FROM \"{_schema}\".{ComplianceProjection.TableName}", connection);
            await wipe.ExecuteNonQueryAsync(Ct);
        }
        (await HistoryAsync(group, instants)).ShouldAllBe(h => h == "[]");
        await daemon.RebuildProjectionAsync(ComplianceProjection.Name, TimeSpan.FromMinutes(2), Ct);

        (await SnapshotRowsAsync()).ShouldBe(rows);
        (await HistoryAsync(group, instants)).ShouldBe(before);
        await daemon.StopAllAsync();

        // And the history says what happened: at the end of the week the points on disk are those not expired (the three whose
        // expiry fell in a missed hour are held beyond the range), the newest is in the vault.
        await using var query = _store.QuerySession();
        var end = start.AddDays(7).AddMinutes(30);
        var facts = await ComplianceSnapshots.ValidAtAsync(query, end, group, null, Ct);
        facts.Select(f => f.DataSourceId).ShouldBe(sources, ignoreOrder: true);
        foreach (var f in facts)
        {
            // Snapshot rows keep the held points' creation times (oldest first), not their ids.
            f.HeldOnDisk().ShouldBe(points.Where(p => p.Source == f.DataSourceId && held.Contains(p.Id)).Select(p => p.At.AddMinutes(5)).Order(), "created five minutes into each hour");
            f.NewestVaultPointCreatedAt.ShouldBe(start.AddDays(7).AddMinutes(5));
            var compliance = ComplianceEvaluation.Evaluate(f, end);
            compliance.Rpo.Met.ShouldBeTrue();
            compliance.Online.Met.ShouldBeTrue();
            compliance.Retention.Overdue.ShouldBe(3);
        }
    }
}
