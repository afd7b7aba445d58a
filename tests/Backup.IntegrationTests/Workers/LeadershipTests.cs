extern alias workers;
using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using workers::Backup.Workers;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// Of several worker processes one leads each periodic duty (schedulers, reaper, retention, alerts, collection, anchoring) and
/// the others stand by: a standby takes over when the leader stops or its process dies, and duties are led independently.
/// Each worker here has a document store (and connection pool) of its own, like a process.
/// </summary>
public sealed class LeadershipTests : IAsyncLifetime
{
    private readonly string _schema = TestServices.NewSchema("lead");
    private readonly List<DocumentStore> _stores = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync() => await Store().Storage.ApplyAllConfiguredChangesToDatabaseAsync();

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _stores) store.Dispose();
        await TestServices.DropSchemaAsync(_schema);
    }

    private DocumentStore Store()
    {
        var store = DocumentStore.For(o => o.ConfigureCatalog(TestServices.Postgres, _schema));
        _stores.Add(store);
        return store;
    }

    private Leadership Worker(string duty)
    {
        var store = Store();
        return new Leadership(() => store, duty, NullLogger.Instance);
    }

    [Fact]
    public async Task One_worker_of_three_leads_a_duty_and_another_takes_over_when_it_resigns()
    {
        await using var a = Worker("retention");
        await using var b = Worker("retention");
        await using var c = Worker("retention");

        (await a.HoldAsync(Ct)).ShouldBeTrue();
        (await b.HoldAsync(Ct)).ShouldBeFalse();
        (await c.HoldAsync(Ct)).ShouldBeFalse();
        (await a.HoldAsync(Ct)).ShouldBeTrue("the leader keeps its lead from round to round");

        await a.ResignAsync();
        (await b.HoldAsync(Ct)).ShouldBeTrue();
        (await c.HoldAsync(Ct)).ShouldBeFalse();
        (await a.HoldAsync(Ct)).ShouldBeFalse("the lead went to the worker that asked first");
    }

    [Fact]
    public async Task A_standby_takes_over_from_a_leader_whose_process_died()
    {
        await using var leader = Worker("online scheduler");
        await using var standby = Worker("online scheduler");
        (await leader.HoldAsync(Ct)).ShouldBeTrue();
        (await standby.HoldAsync(Ct)).ShouldBeFalse();

        // The leader's process dies: the server ends its session (kill -9 closes its sockets; terminating the backend does the same).
        await using (var connection = new NpgsqlConnection(TestServices.Postgres))
        {
            await connection.OpenAsync(Ct);
            await using var kill = new NpgsqlCommand(
                """
                select count(*) filter (where pg_terminate_backend(pid)) from pg_locks
                where locktype = 'advisory' and granted and objsubid = 1 and database = (select oid from pg_database where datname = current_database())
                  and ((classid::bigint << 32) | objid::bigint) = @key
                """, connection);
            kill.Parameters.AddWithValue("key", Key("online scheduler"));
            ((long)(await kill.ExecuteScalarAsync(Ct))!).ShouldBe(1);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await standby.HoldAsync(Ct))
        {
            DateTime.UtcNow.ShouldBeLessThan(deadline, "the standby never got the lead of a dead leader");
            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task Duties_are_led_independently()
    {
        await using var retention = Worker("retention");
        await using var reaper = Worker("lease reaper");
        await using var otherRetention = Worker("retention");
        (await retention.HoldAsync(Ct)).ShouldBeTrue();
        (await reaper.HoldAsync(Ct)).ShouldBeTrue("another duty's lock is free");
        (await otherRetention.HoldAsync(Ct)).ShouldBeFalse();
    }

    private long Key(string duty) => Backup.Commands.Common.AdvisoryLockKey.For($"backup-duty:{duty}:{_schema}");
}
