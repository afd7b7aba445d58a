using Backup.Commands.Common;
using Marten;
using Npgsql;

namespace Backup.Workers;

/// <summary>
/// Which one of several worker processes runs a periodic duty (a scheduler, the reaper, retention…): the one holding the
/// duty's PostgreSQL advisory lock, a session lock on a connection of its own. The others ask again on each round and take
/// over as soon as the holder stops (it resigns) or dies (its session ends with its connection). Each duty has a lock of its
/// own, so different workers may lead different duties. The lock only saves the standby workers' work: every duty's round
/// is written so that two running at once (a connection lost unnoticed) still changes each thing once.
/// </summary>
public sealed class Leadership(Func<IDocumentStore> store, string duty, ILogger log) : IAsyncDisposable
{
    /// <summary>The store is resolved at the first round: hosted services are built before Marten's store is.</summary>
    public Leadership(IServiceProvider services, string duty, ILogger log) : this(services.GetRequiredService<IDocumentStore>, duty, log) { }

    private NpgsqlConnection? _held;

    /// <summary>Whether this worker leads the duty now: keeps a held lock, or takes it when it is free.</summary>
    public async Task<bool> HoldAsync(CancellationToken ct)
    {
        if (_held is { State: System.Data.ConnectionState.Open }) return true;
        await ResignAsync();
        var documents = store();
        var connection = documents.Storage.Database.CreateConnection();
        try
        {
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("select pg_try_advisory_lock(@key)", connection);
            command.Parameters.AddWithValue("key", AdvisoryLockKey.For($"backup-duty:{duty}:{documents.Options.Events.DatabaseSchemaName}"));
            if ((bool)(await command.ExecuteScalarAsync(ct))!)
            {
                log.LogInformation("This worker now leads {Duty}", duty);
                _held = connection;
                return true;
            }
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
        await connection.DisposeAsync();
        return false;
    }

    /// <summary>
    /// Gives the lock up before the connection goes back to the pool: a pooled connection keeps its session's advisory locks
    /// until it is reset on its next use, which would keep the standby workers out.
    /// </summary>
    public async Task ResignAsync()
    {
        if (_held is not { } held) return;
        _held = null;
        try
        {
            if (held.State == System.Data.ConnectionState.Open)
            {
                await using var unlock = new NpgsqlCommand("select pg_advisory_unlock_all()", held);
                await unlock.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
        catch (NpgsqlException)
        {
            // The connection is gone, and the lock with its session.
        }
        finally
        {
            await held.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => new(ResignAsync());
}
