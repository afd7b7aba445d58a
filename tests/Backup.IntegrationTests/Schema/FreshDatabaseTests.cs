using Backup.IntegrationTests.Infrastructure;
using Backup.Projections;
using Marten;
using Npgsql;

namespace Backup.IntegrationTests.Schema;

/// <summary>
/// A fresh database meets several processes at once (the API and the workers started together, or a second server): each
/// creates its schema, and the database-wide pieces they share (pg_trgm for item search) must come out of that once, with
/// no process failing on the other's create.
/// </summary>
public sealed class FreshDatabaseTests : IAsyncLifetime
{
    private readonly string _database = TestServices.NewSchema("fresh");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private string ConnectionString => new NpgsqlConnectionStringBuilder(TestServices.Postgres) { Database = _database }.ConnectionString;

    public async ValueTask InitializeAsync()
    {
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync(Ct);
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{_database}\"", connection);
        await create.ExecuteNonQueryAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(TestServices.Postgres);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{_database}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Several_stores_creating_their_schemas_at_once_on_a_fresh_database_all_succeed_and_search_items()
    {
        var schemas = Enumerable.Range(0, 6).Select(i => $"server{i}").ToArray();
        var stores = schemas.Select(s => DocumentStore.For(o => o.ConfigureCatalog(ConnectionString, s))).ToArray();
        try
        {
            await Task.WhenAll(stores.Select(s => s.Storage.ApplyAllConfiguredChangesToDatabaseAsync()));

            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync(Ct);
            await using (var extension = new NpgsqlCommand("select count(*) from pg_extension where extname = 'pg_trgm'", connection))
                ((long)(await extension.ExecuteScalarAsync(Ct))!).ShouldBe(1);
            // Every schema got its trigram index on item names.
            await using var indexes = new NpgsqlCommand(
                "select count(*) from pg_indexes where indexname = 'ix_item_versions_name' and indexdef like '%gin_trgm_ops%'", connection);
            ((long)(await indexes.ExecuteScalarAsync(Ct))!).ShouldBe(schemas.Length);
        }
        finally
        {
            foreach (var store in stores) store.Dispose();
        }
    }
}
