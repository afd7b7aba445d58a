using Azure.Storage.Blobs;
using Backup.Commands.Dispatching;
using Backup.Projections;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using Backup.Workers;
using Backup.Workers.Alerting;
using Backup.Workers.Auditing;
using Backup.Workers.Checking;
using Backup.Workers.CollectingGarbage;
using Backup.Workers.Dispatching;
using Backup.Workers.GroupRuns;
using Backup.Workers.Retention;
using Backup.Workers.Scheduling;
using Backup.Workers.TransferringToVault;
using JasperFx.Events.Daemon;
using Marten;

// Headless workers: Marten's async daemon (projections and subscriptions, with leader election between
// worker processes), the short-term and online schedulers, the online copy of recovery points to the vault, the lease
// reaper, the alert monitor and retention.
var builder = Host.CreateApplicationBuilder(args);
var config = builder.Configuration;
var options = config.GetSection(WorkerOptions.Section).Get<WorkerOptions>() ?? new WorkerOptions();
var martenConnection = config.GetConnectionString("Marten") ?? throw new InvalidOperationException("ConnectionStrings:Marten is not set.");
var vaultConnection = config.GetConnectionString("Vault") ?? throw new InvalidOperationException("ConnectionStrings:Vault is not set.");

builder.Services.AddSingleton(Backup.Commands.Common.ClockOptions.From(config));
builder.Services.AddSingleton(new DiskStore(Path.GetFullPath(options.DiskStore, builder.Environment.ContentRootPath)));
var vault = new VaultStore(new BlobServiceClient(vaultConnection).GetBlobContainerClient(options.VaultContainer));
builder.Services.AddSingleton(vault);
builder.Services.AddOptions<VaultCopyOptions>().Bind(config.GetSection(VaultCopyOptions.Section));
builder.Services.AddSingleton<VaultCopier>();
builder.Services.AddOptions<SchedulerOptions>().Bind(config.GetSection(SchedulerOptions.Section));
builder.Services.AddHostedService<ShortTermScheduler>();
builder.Services.AddHostedService<OnlineScheduler>();
builder.Services.AddOptions<JobLeaseOptions>().Bind(config.GetSection(JobLeaseOptions.Section));
builder.Services.AddHostedService<LeaseReaper>();
builder.Services.AddOptions<AlertOptions>().Bind(config.GetSection(AlertOptions.Section));
builder.Services.AddHostedService<AlertMonitor>();
builder.Services.AddOptions<RetentionOptions>().Bind(config.GetSection(RetentionOptions.Section));
builder.Services.AddHostedService<RetentionWorker>();
builder.Services.AddOptions<PackCollectionOptions>().Bind(config.GetSection(PackCollectionOptions.Section));
builder.Services.AddHostedService<PackCollector>();
builder.Services.AddOptions<AuditAnchorOptions>().Bind(config.GetSection(AuditAnchorOptions.Section));
builder.Services.AddHostedService<AuditAnchorWorker>();
builder.Services.AddOptions<ConsistencyCheckOptions>().Bind(config.GetSection(ConsistencyCheckOptions.Section));
builder.Services.AddSingleton<ConsistencyChecker>();
builder.Services.AddHostedService(sp => sp.GetRequiredService<ConsistencyChecker>());
builder.Services.AddMarten(opts => opts.ConfigureCatalog(martenConnection, options.Schema))
    .UseLightweightSessions()
    .ApplyAllDatabaseChangesOnStartup()
    .AddAsyncDaemon(DaemonMode.HotCold)
    .AddSubscriptionWithServices<VaultCopySubscription>(ServiceLifetime.Singleton)
    .AddSubscriptionWithServices<ConsistencyRepairSubscription>(ServiceLifetime.Singleton)
    .AddSubscriptionWithServices<GroupRunSubscription>(ServiceLifetime.Singleton);

var host = builder.Build();
await vault.EnsureCreatedAsync(CancellationToken.None);
await host.RunAsync();
