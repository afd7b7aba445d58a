using System.Data.Common;
using Weasel.Core;
using Weasel.Postgresql;
using DbCommandBuilder = Weasel.Core.DbCommandBuilder;

namespace Backup.Commands.Common;

/// <summary>
/// A PostgreSQL extension shared by every schema of the database, created safely by several stores at once. Two sessions
/// running <c>CREATE EXTENSION IF NOT EXISTS</c> together on a database without it both try to insert it, and the later
/// fails on <c>pg_extension_name_index</c> (the API and the workers starting together on a fresh database, or parallel test
/// classes, did). So the create statement first takes a transaction advisory lock for the extension: the second session
/// waits for the first to commit, then finds the extension there. Everything else is Weasel's <see cref="Extension"/>.
/// </summary>
public sealed class SharedExtension(string name) : ISchemaObject
{
    private readonly Extension _extension = new(name);

    public DbObjectName Identifier => _extension.Identifier;

    public void WriteCreateStatement(Migrator migrator, TextWriter writer)
    {
        var key = AdvisoryLockKey.For($"extension:{_extension.ExtensionName}");
        writer.WriteLine($"""
            DO $$
            BEGIN
              PERFORM pg_advisory_xact_lock({key});
              CREATE EXTENSION IF NOT EXISTS {_extension.ExtensionName} SCHEMA public;
            END
            $$;
            """);
    }

    public void WriteDropStatement(Migrator rules, TextWriter writer) => _extension.WriteDropStatement(rules, writer);

    public void ConfigureQueryCommand(DbCommandBuilder builder) => _extension.ConfigureQueryCommand(builder);

    // The delta must name this object, not the inner one: the migration writes the delta's object's create statement.
    public async Task<ISchemaObjectDelta> CreateDeltaAsync(DbDataReader reader, CancellationToken ct = default) =>
        new SchemaObjectDelta(this, await reader.ReadAsync(ct) ? SchemaPatchDifference.None : SchemaPatchDifference.Create);

    public IEnumerable<DbObjectName> AllNames() => _extension.AllNames();
}
