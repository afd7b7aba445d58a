using Npgsql;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>
/// The real PostgreSQL and Azurite that scripts/services.sh starts; the test command exports their connection
/// strings. Every test class gets its own schema, disk store and vault container, so classes run in parallel.
/// </summary>
public static class TestServices
{
    public static string Postgres =>
        Environment.GetEnvironmentVariable("ConnectionStrings__Marten")
        ?? "Host=127.0.0.1;Port=55432;Username=postgres;Database=backup";

    public static string Vault =>
        Environment.GetEnvironmentVariable("ConnectionStrings__Vault")
        ?? "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10100/devstoreaccount1;";

    public static string NewSchema(string prefix) => $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(40, prefix.Length + 33)].ToLowerInvariant();

    public static async Task DropSchemaAsync(string schema)
    {
        await using var connection = new NpgsqlConnection(Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
        await command.ExecuteNonQueryAsync();
    }

    public static async Task<long> CountEventsAsync(string schema)
    {
        await using var connection = new NpgsqlConnection(Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM \"{schema}\".mt_events", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>The sequence of the newest event committed in <paramref name="schema"/> (0 when there is none).</summary>
    public static async Task<long> LastSequenceAsync(string schema)
    {
        await using var connection = new NpgsqlConnection(Postgres);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT coalesce(max(seq_id), 0) FROM \"{schema}\".mt_events", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Backup.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Backup.sln not found above " + AppContext.BaseDirectory);
    }
}
