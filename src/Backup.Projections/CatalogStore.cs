using Backup.Commands;
using Backup.Commands.Access;
using Backup.Commands.Cataloguing;
using Backup.Commands.Dispatching;
using Backup.Commands.RecoveryPoints;
using Backup.Commands.Uniqueness;
using Backup.Projections.Access;
using Backup.Projections.Agents;
using Backup.Projections.Alerts;
using Backup.Projections.Auditing;
using Backup.Projections.Compliance;
using Backup.Projections.DataSources;
using Backup.Projections.Jobs;
using Backup.Projections.ProtectionGroups;
using Backup.Projections.RecoveryPoints;
using Backup.Projections.Restores;
using JasperFx.Events;
using JasperFx.Events.Projections;
using Marten;
using Npgsql;

namespace Backup.Projections;

public static class CatalogStore
{
    /// <summary>
    /// Events per daemon page for the async projections (the daemon's default is 500). Each page is one transaction and
    /// rewrites every view it touches once, so a rebuild over a year of interleaved backups runs ~1.6x faster with pages of
    /// 5,000 (bench/catalog.sh); a live daemon's pages hold only what is new, so they stay small.
    /// </summary>
    public const int DaemonPageSize = 5_000;

    /// <summary>Statements a connection keeps prepared (Npgsql's <c>Max Auto Prepare</c>) unless the connection string says.</summary>
    public const int AutoPreparedStatements = 100;

    /// <summary>
    /// The connection string with Npgsql's automatic preparation on: a statement run five times on a connection is prepared
    /// there, so PostgreSQL parses and plans it once instead of on every run. Marten sends the same few statements over and
    /// over (a view's upsert, an event append, a load by id); measured on a projection rebuild (bench/catalog.sh, 1M events),
    /// parsing and planning were ~20 % of the PostgreSQL backend's time, and the recovery-point and job views rebuilt ~1.3x
    /// faster with it. A connection string that sets <c>Max Auto Prepare</c> itself (0 turns it off) is left as it is.
    /// </summary>
    public static string WithAutoPrepare(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!System.Text.RegularExpressions.Regex.IsMatch(connectionString, @"(^|;)\s*max\s*auto\s*prepare\s*=", System.Text.RegularExpressions.RegexOptions.IgnoreCase))
            builder.MaxAutoPrepare = AutoPreparedStatements;
        return builder.ConnectionString;
    }

    /// <summary>
    /// The whole catalog's store configuration: event aliases, streams and every projection. Inline only
    /// where a command needs read-your-write (uniqueness, the agents' job queue); the rest run in the async daemon.
    /// </summary>
    public static StoreOptions ConfigureCatalog(this StoreOptions opts, string connectionString, string schema)
    {
        opts.Connection(WithAutoPrepare(connectionString));
        opts.DatabaseSchemaName = schema;
        opts.Events.DatabaseSchemaName = schema;
        opts.Events.StreamIdentity = StreamIdentity.AsGuid;
        opts.Events.MetadataConfig.CorrelationIdEnabled = true;
        opts.Events.MetadataConfig.CausationIdEnabled = true;
        opts.Events.MetadataConfig.HeadersEnabled = true;
        // Wakes the async daemon as soon as events commit (a notification queued with each append) instead of at its next
        // poll (up to 1 s when quiet): the views a client reads right after a job wait on it (the API's ReadYourWrites).
        opts.Events.UseListenNotifyForEventAppends = true;
        BackupEvents.Register(opts);

        opts.Projections.Add<ProtectionGroupNameProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<ProtectedFolderProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<AgentViewProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<ProtectionGroupViewProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<DataSourceViewProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<AgentJobQueueProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<ApiKeyNameProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<ApiKeyViewProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<RecentSecurityPinProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<AlertViewProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<Backup.Commands.CollectingGarbage.RecoveryPointPacksProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add<Backup.Commands.CollectingGarbage.SyncPacksProjection>(ProjectionLifecycle.Inline);
        opts.Projections.Add(new ItemCatalogProjection(schema), ProjectionLifecycle.Inline, ItemCatalogProjection.Name, o =>
        {
            o.DeleteDataInTableOnTeardown($"{schema}.{ItemCatalog.VersionsTable}");
            o.DeleteDataInTableOnTeardown($"{schema}.{ItemCatalog.PointsTable}");
        });
        opts.Projections.Add<RecoveryPointViewProjection>(ProjectionLifecycle.Async, o => o.BatchSize = DaemonPageSize);
        opts.Projections.Add<RestoreViewProjection>(ProjectionLifecycle.Async, o => o.BatchSize = DaemonPageSize);
        opts.Projections.Add<JobViewProjection>(ProjectionLifecycle.Async, o => o.BatchSize = DaemonPageSize);
        opts.Projections.Add<Backup.Projections.GroupRuns.GroupRunViewProjection>(ProjectionLifecycle.Async, o => o.BatchSize = DaemonPageSize);
        opts.Projections.Add(new ComplianceProjection(schema), ProjectionLifecycle.Async, ComplianceProjection.Name, o =>
        {
            o.BatchSize = DaemonPageSize;
            o.DeleteViewTypeOnTeardown<ComplianceSource>();
            o.DeleteViewTypeOnTeardown<ComplianceGroup>();
            o.DeleteViewTypeOnTeardown<ComplianceRecoveryPoint>();
            o.DeleteDataInTableOnTeardown($"{schema}.{ComplianceProjection.TableName}");
        });
        opts.Storage.ExtendedSchemaObjects.Add(ComplianceProjection.SnapshotTable(schema));
        opts.Storage.ExtendedSchemaObjects.Add(ItemCatalog.Trigrams());
        opts.Storage.ExtendedSchemaObjects.Add(ItemCatalog.Versions(schema));
        opts.Storage.ExtendedSchemaObjects.Add(ItemCatalog.Points(schema));
        // Registered here rather than on AddMarten so that every daemon (workers, or the API's when it runs one) chains.
        opts.Projections.Subscribe(new AuditChainSubscription());
        opts.Listeners.Add(new JobQueuedNotifier());

        opts.Schema.For<ProtectionGroupName>().UniqueIndex(g => g.NameKey);
        opts.Schema.For<ProtectedFolder>().UniqueIndex(f => f.Key);
        opts.Schema.For<ApiKeyName>().UniqueIndex(k => k.NameKey);
        opts.Schema.For<RecentSecurityPin>().Index(p => p.ExpiresAt);
        // The queue keeps every finished job; the lease reaper and the scheduler look for the few queued or running ones.
        opts.Schema.For<QueuedJob>().Index(j => j.AgentId).Index(j => j.State);
        // (data source, sequence): a data source's newest page is a backward scan of that many index entries, not a sort of all its
        // points (a year of two a day is ~700 per data source; bench/catalog.sh). The sequence alone serves the unfiltered list.
        opts.Schema.For<RecoveryPointView>().Index([r => r.DataSourceId, r => r.Sequence]).Index(r => r.Sequence);
        opts.Schema.For<JobView>().Index(j => j.Sequence).Index(j => j.DataSourceId).Index(j => j.GroupId);
        opts.Schema.For<AuditLink>();
        opts.Schema.For<StoredChunk>().Index(c => c.PackId);
        opts.Schema.For<Backup.Commands.CollectingGarbage.CondemnedPack>();
        opts.Schema.For<Backup.Commands.CollectingGarbage.Condemnation>();
        opts.Schema.For<AlertView>().Index(a => a.RaisedAt).Index(a => a.DataSourceId);
        opts.Schema.For<AgentContact>();
        opts.Schema.For<ComplianceSource>().Index(s => s.GroupId).Index(s => s.Sequence); // Sequence: ComplianceHeads reads what changed
        opts.Schema.For<ComplianceGroup>();
        opts.Schema.For<ComplianceRecoveryPoint>();
        return opts;
    }
}
