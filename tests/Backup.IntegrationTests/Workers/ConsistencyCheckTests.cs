extern alias workers;
using System.Net;
using System.Security.Cryptography;
using Backup.Commands.CheckingRecoveryPoints;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using workers::Backup.Workers.Checking;

namespace Backup.IntegrationTests.Workers;

/// <summary>
/// The consistency check on real PostgreSQL, the API's disk store and Azurite: damage is found on either tier, repaired
/// from the other tier's sound copy, and where no sound copy is left the data is sent again by a new backup; the daily
/// check starts once however many workers tick.
/// </summary>
public sealed class ConsistencyCheckTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private DiskStore Disk => api.Services.GetRequiredService<DiskStore>();
    private VaultStore Vault => api.Services.GetRequiredService<VaultStore>();

    private ConsistencyChecker Checker(TimeOnly? at = null) => new(api.Services, Disk, Vault, TimeProvider.System,
        Options.Create(new ConsistencyCheckOptions { TimeOfDay = at ?? new TimeOnly(2, 0) }), NullLogger<ConsistencyChecker>.Instance);

    private Task<ConsistencyCheckCompleted> CheckAsync(params string[] packs) => Checker().CheckAsync(Guid.NewGuid(), "test", packs, Ct);

    private async Task<AgentBackup> InBothTiersAsync()
    {
        await Vault.EnsureCreatedAsync(Ct);
        var backup = await _client.CreatedBackupAsync();
        await api.CopyToVaultAsync(backup.RecoveryPointId);
        return backup;
    }

    private static void Flip(string path, long at)
    {
        using var file = File.Open(path, FileMode.Open, FileAccess.ReadWrite);
        file.Position = at;
        var b = file.ReadByte();
        file.Position = at;
        file.WriteByte((byte)(b ^ 0x40));
    }

    private async Task<byte[]> VaultBytesAsync(string packId)
    {
        await using var blob = await Vault.OpenPackAsync(packId, Ct);
        using var copy = new MemoryStream();
        await blob.CopyToAsync(copy, Ct);
        return copy.ToArray();
    }

    private async Task<List<RecoveryPointChecked>> ChecksOfAsync(Guid rp)
    {
        await using var session = api.Store.QuerySession();
        return [.. (await session.Events.FetchStreamAsync(rp, token: Ct)).Select(e => e.Data).OfType<RecoveryPointChecked>()];
    }

    [Fact]
    public async Task A_damaged_disk_pack_is_rewritten_from_the_vault_and_the_point_is_sound_again()
    {
        var backup = await InBothTiersAsync();
        var pack = backup.Packs[0];
        Flip(Disk.PackPath(pack.Id), 100);

        var outcome = await CheckAsync([.. backup.Packs.Select(p => p.Id)]);

        outcome.Damaged.ShouldContain(d => d.PackId == pack.Id && d.Tier == StorageTier.Disk);
        outcome.Repaired.ShouldBe([new PackRepaired(pack.Id, StorageTier.Disk, StorageTier.Vault)]);
        outcome.Unrecoverable.ShouldBeEmpty();
        (await File.ReadAllBytesAsync(Disk.PackPath(pack.Id), Ct)).ShouldBe(pack.Bytes);
        var checks = await ChecksOfAsync(backup.RecoveryPointId);
        checks.Select(c => c.Damaged.Count).ShouldBe([1, 0]); // found damaged, then sound after the repair
        var view = await _client.WaitForAsync($"/api/recovery-points/{backup.RecoveryPointId}", v => v.GetProperty("verifiedOnDisk").ValueKind == System.Text.Json.JsonValueKind.True);
        view.GetProperty("damagedOnDisk").GetArrayLength().ShouldBe(0);
        // The server's own check agrees.
        var check = await _client.Http.PostAsync($"/api/recovery-points/{backup.RecoveryPointId}/check?tier=Disk", null, Ct);
        check.StatusCode.ShouldBe(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_pack_missing_from_the_vault_is_uploaded_again_from_disk()
    {
        var backup = await InBothTiersAsync();
        var pack = backup.Packs[1];
        (await Vault.DeletePackAsync(pack.Id, Ct)).ShouldBeTrue();

        var outcome = await CheckAsync([.. backup.Packs.Select(p => p.Id)]);

        outcome.Damaged.ShouldBe([new DamagedCopy(pack.Id, StorageTier.Vault, "missing")]);
        outcome.Repaired.ShouldBe([new PackRepaired(pack.Id, StorageTier.Vault, StorageTier.Disk)]);
        (await VaultBytesAsync(pack.Id)).ShouldBe(pack.Bytes);
    }

    [Fact]
    public async Task A_pack_damaged_on_both_tiers_is_sent_again_by_a_new_backup_of_its_data_source()
    {
        var backup = await InBothTiersAsync();
        var pack = backup.Packs[0];
        Flip(Disk.PackPath(pack.Id), 64);
        (await Vault.DeletePackAsync(pack.Id, Ct)).ShouldBeTrue();

        var outcome = await CheckAsync([.. backup.Packs.Select(p => p.Id)]);

        outcome.Repaired.ShouldBeEmpty();
        outcome.Unrecoverable.ShouldBe([pack.Id]);
        outcome.AffectedRecoveryPoints.ShouldBe([backup.RecoveryPointId]);
        // Its chunks are no longer offered as known, so the agent sends them again, in the backup the check asked for.
        var known = await _client.KnownChunksAsync(backup.Agent);
        pack.Chunks.ShouldAllBe(c => !known.Contains(c));
        var requested = outcome.BackupsRequested.ShouldHaveSingleItem();
        var poll = await _client.PollAsync(backup.Agent);
        poll.StatusCode.ShouldBe(HttpStatusCode.OK);
        (await poll.Content.ReadAsStringAsync(Ct)).ShouldContain(requested.ToString());
        (await ChecksOfAsync(backup.RecoveryPointId)).Select(c => c.Damaged.Count).ShouldBe([1, 1]); // one per tier, none repaired
    }

    [Fact]
    public async Task A_sound_repository_is_left_as_it_is()
    {
        var backup = await InBothTiersAsync();
        var before = await api.EventCountAsync();
        var outcome = await CheckAsync([.. backup.Packs.Select(p => p.Id)]);
        outcome.PacksChecked.ShouldBe(6); // three packs on each tier
        outcome.Damaged.ShouldBeEmpty();
        outcome.BackupsRequested.ShouldBeEmpty();
        (await api.EventCountAsync()).ShouldBe(before + 1); // just the outcome
    }

    [Fact]
    public async Task The_daily_check_starts_once_however_many_workers_tick_and_not_before_its_time()
    {
        var at = new TimeOnly(3, 30);
        var day = new DateTimeOffset(2031, 5, 6, 0, 0, 0, TimeSpan.Zero);
        (await Checker(at).TickAsync(day.AddHours(3), Ct)).ShouldBeNull();
        var ticks = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Checker(at).TickAsync(day.AddHours(3.6), Ct)));
        ticks.Count(t => t is not null).ShouldBe(1);
        ticks.Single(t => t is not null)!.CheckId.ShouldBe(ConsistencyCheck.DueId(DateOnly.FromDateTime(day.UtcDateTime)));
        (await Checker(at).TickAsync(day.AddHours(5), Ct)).ShouldBeNull(); // later that day: done already
    }

    [Fact]
    public async Task A_daily_check_left_by_a_worker_that_stopped_is_run_by_the_next_tick_but_not_while_a_worker_runs_it()
    {
        var at = new TimeOnly(3, 30);
        var day = new DateTimeOffset(2032, 7, 8, 0, 0, 0, TimeSpan.Zero);
        var checkId = ConsistencyCheck.DueId(DateOnly.FromDateTime(day.UtcDateTime));
        // What a worker stopped or killed during the check leaves behind: the day's check started, never completed.
        await using (var session = api.Store.LightweightSession())
        {
            session.Events.StartStream(checkId, new ConsistencyCheckDue(checkId, DateOnly.FromDateTime(day.UtcDateTime), day.AddHours(3.5)));
            await session.SaveChangesAsync(Ct);
        }

        // While a worker is running it (it holds the day's lock on its session), the others leave it alone.
        // Not pooled: closing it ends the session, as a worker's death does.
        await using (var worker = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TestServices.Postgres) { Pooling = false }.ConnectionString))
        {
            await worker.OpenAsync(Ct);
            await using var hold = new NpgsqlCommand("select pg_advisory_lock(@key)", worker);
            hold.Parameters.AddWithValue("key", ConsistencyChecker.RunningLockKey(api.Schema, checkId));
            await hold.ExecuteNonQueryAsync(Ct);
            (await Checker(at).TickAsync(day.AddHours(4), Ct)).ShouldBeNull();
        } // that worker is gone, and its session with it

        // The server ends a closed connection's session (and frees its locks) a moment after the client lets go: wait for that.
        await using (var probe = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TestServices.Postgres) { Pooling = false }.ConnectionString))
        {
            await probe.OpenAsync(Ct);
            await using var tryLock = new NpgsqlCommand("select pg_try_advisory_lock(@key)", probe);
            tryLock.Parameters.AddWithValue("key", ConsistencyChecker.RunningLockKey(api.Schema, checkId));
            var free = false;
            for (var i = 0; i < 100 && !(free = (bool)(await tryLock.ExecuteScalarAsync(Ct))!); i++) await Task.Delay(50, Ct);
            free.ShouldBeTrue("the gone worker's session still holds the day's lock");
            await using var unlock = new NpgsqlCommand("select pg_advisory_unlock(@key)", probe);
            unlock.Parameters.AddWithValue("key", ConsistencyChecker.RunningLockKey(api.Schema, checkId));
            await unlock.ExecuteNonQueryAsync(Ct);
        }

        var taken = await Checker(at).TickAsync(day.AddHours(4.25), Ct);
        taken.ShouldNotBeNull().CheckId.ShouldBe(checkId);
        (await Checker(at).TickAsync(day.AddHours(5), Ct)).ShouldBeNull(); // done now
        await using var query = api.Store.QuerySession();
        (await query.Events.FetchStreamAsync(checkId, token: Ct)).Select(e => e.Data).OfType<ConsistencyCheckCompleted>().ShouldHaveSingleItem();
    }
}
