using System.Text.Json.Serialization;
using Azure.Storage.Blobs;
using Backup.Api.Access;
using Backup.Api.AgentWork;
using Backup.Api.Alerts;
using Backup.Api.Auditing;
using Backup.Api.Compliance;
using Backup.Api.DataSources;
using Backup.Api.Enrolling;
using Backup.Api.GroupRuns;
using Backup.Api.Infrastructure;
using Backup.Api.Items;
using Backup.Api.Jobs;
using Backup.Api.ProtectionGroups;
using Backup.Api.RecoveryPoints;
using Backup.Api.Repository;
using Backup.Api.Restores;
using Backup.Commands.Common;
using Backup.Commands.ProtectionGroups;
using Backup.Commands.Stores;
using Backup.Projections;
using Backup.Projections.Auditing;
using Backup.Storage.Disk;
using Backup.Storage.Vault;
using FluentValidation;
using JasperFx.Events.Daemon;
using Marten;
using Microsoft.Extensions.Options;

var builder = WebApplication.CreateBuilder(args);
var services = builder.Services;
var config = builder.Configuration;

services.AddOptions<ServerOptions>().Bind(config.GetSection(ServerOptions.Section))
    .Validate(o => string.IsNullOrEmpty(o.BootstrapAdminKey) || o.BootstrapAdminKey.Trim().Length >= ServerOptions.MinBootstrapAdminKeyLength,
        $"Backup:BootstrapAdminKey must be at least {ServerOptions.MinBootstrapAdminKeyLength} characters (e.g. openssl rand -base64 32).")
    .ValidateOnStart();
services.AddOptions<Backup.Commands.Dispatching.JobLeaseOptions>().Bind(config.GetSection(Backup.Commands.Dispatching.JobLeaseOptions.Section));
var server = config.GetSection(ServerOptions.Section).Get<ServerOptions>() ?? new ServerOptions();
var martenConnection = config.GetConnectionString("Marten") ?? throw new InvalidOperationException("ConnectionStrings:Marten is not set.");
var vaultConnection = config.GetConnectionString("Vault") ?? throw new InvalidOperationException("ConnectionStrings:Vault is not set.");

services.AddSingleton(Backup.Commands.Common.ClockOptions.From(builder.Configuration));
services.AddSingleton<Backup.Projections.Compliance.ComplianceHeads>();
var marten = services.AddMarten(opts => opts.ConfigureCatalog(martenConnection, server.Schema))
    .UseLightweightSessions()
    .ApplyAllDatabaseChangesOnStartup();
if (server.RunDaemon) marten.AddAsyncDaemon(DaemonMode.Solo);

services.AddMediator(options =>
{
    options.ServiceLifetime = ServiceLifetime.Scoped;
    options.PipelineBehaviors = [typeof(ValidationBehavior<,>), typeof(AuditMetadataBehavior<,>)];
});
services.AddValidatorsFromAssemblyContaining<CreateProtectionGroupValidator>();
services.AddValidatorsFromAssemblyContaining<ListAuditEventsValidator>();
services.AddHttpContextAccessor();
services.AddScoped<CommandMetadata>();

services.AddSingleton(sp => new DiskStore(Path.GetFullPath(sp.GetRequiredService<IOptions<ServerOptions>>().Value.DiskStore, builder.Environment.ContentRootPath)));
services.AddSingleton(sp => new VaultStore(new BlobServiceClient(vaultConnection).GetBlobContainerClient(server.VaultContainer)));
services.AddSingleton(sp => new ServerDiskPacks(sp.GetRequiredService<DiskStore>(), sp.GetRequiredService<IOptions<ServerOptions>>().Value.MaxPackBytes));
services.AddSingleton<IDiskPacks>(sp => sp.GetRequiredService<ServerDiskPacks>());
services.AddSingleton<IManifests>(sp => sp.GetRequiredService<ServerDiskPacks>());
services.AddSingleton<IKeyFiles, ServerKeyFiles>();
services.AddSingleton<ICopyChecker, ServerCopyChecker>();
services.AddSingleton<IRestoreReads, ServerRestoreReads>();
services.AddSingleton<JobArrivals>();
services.AddHostedService(sp => new JobArrivalListener(martenConnection, sp.GetRequiredService<JobArrivals>(), sp.GetRequiredService<ILogger<JobArrivalListener>>()));

// Enums travel as their names ("Folder", "Vault", "Both"), and unknown names are a 400. A body field the operation does not
// have is a 400 naming it, as an unknown query parameter is: a misspelt "ifExist" silently ignored would restore with the
// default instead of what was asked. Strings are plain text (PlainText says which characters and why).
services.ConfigureHttpJsonOptions(o =>
{
    o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(allowIntegerValues: false));
    o.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
    o.SerializerOptions.UsePlainText();
});
services.AddProblemDetails();
services.AddExceptionHandler<ProblemMapping>();
services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
services.AddAccess();
services.AddHealthChecks()
    .AddNpgSql(martenConnection, name: "postgresql")
    .AddCheck<VaultHealthCheck>("vault");
services.AddEndpointsApiExplorer();
services.AddSwaggerGen(o =>
{
    o.SwaggerDoc("v1", new() { Title = "Backup catalog API", Version = "v1" });
    o.AddAccessSecurity();
    o.OperationFilter<OpenApiExamples>();
});

var app = builder.Build();
app.UseCorrelationId();
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseSwagger();
app.UseSwaggerUI(o => o.RoutePrefix = "swagger");
app.UseAuthentication();
app.UseAuthorization();
app.RejectControlCharactersInQuery();
app.RejectUnknownQueryParameters();

await app.Services.GetRequiredService<VaultStore>().EnsureCreatedAsync(CancellationToken.None);

app.MapHealthChecks("/health").AllowAnonymous();
app.MapGet("/", () => Results.Redirect("/swagger")).ExcludeFromDescription().AllowAnonymous();
app.MapEnrolment();
app.MapProtectionGroups();
app.MapDataSources();
app.MapGroupRuns();
app.MapRecoveryPoints();
app.MapRestores();
app.MapRepositoryKey();
app.MapAgentWork();
app.MapAudit();
app.MapAccess();
app.MapAlerts();
app.MapJobs();
app.MapCompliance();
app.MapItems();

app.Run();

public partial class Program;
