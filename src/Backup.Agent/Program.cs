using Backup.Agent;
using Backup.Agent.BackingUp;
using Backup.Agent.Enrolling;
using Backup.Agent.Jobs;
using Backup.Agent.Memory;
using Backup.Agent.Offline;
using Backup.Agent.Restoring;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

// The protection agent: enrols with a one-time token, then polls the backup server for backup and restore
// jobs. It speaks HTTP only and never touches the catalog's database.
// Chunk-sized native buffers go back to the system when freed (see NativeHeap).
NativeHeap.ReturnLargeBlocksAtOnce();
if (OfflineCommands.Handles(args))
{
    using var loggers = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning));
    using var stop = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
    return await OfflineCommands.RunAsync(args, loggers, stop.Token);
}

// The agent reads its settings once (appsettings.json next to the executable, the environment, the command line) and watches
// no file: the default content root is the working directory, watched with all its subdirectories for settings changes, so
// an agent started in a folder it then restores into or backs up queued an event per file written there (a restore's peak
// memory 154 instead of 87 MB, measured, issue 4 note).
var settings = new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory, Configuration = new ConfigurationManager() };
settings.Configuration["hostBuilder:reloadConfigOnChange"] = "false";
var builder = Host.CreateApplicationBuilder(settings);
builder.Services.AddOptions<AgentOptions>().Bind(builder.Configuration.GetSection(AgentOptions.Section))
    .Validate(o => o.CompressionLevel is >= 1 and <= 19, "Agent:CompressionLevel must be a zstd level from 1 to 19 (default 2).")
    .ValidateOnStart();
// One client for the process: the credential set after enrolment must be on every later request.
builder.Services.AddSingleton(sp => new ServerClient(new HttpClient
{
    BaseAddress = sp.GetRequiredService<IOptions<AgentOptions>>().Value.Server,
    Timeout = TimeSpan.FromMinutes(30),
}, sp.GetRequiredService<IOptions<AgentOptions>>().Value.RetryFor, sp.GetRequiredService<ILogger<ServerClient>>()));
builder.Services.AddSingleton<Credentials>();
builder.Services.AddSingleton<RepositoryKeys>();
// The kinds of work this agent runs, one runner each (see IJobRunner).
builder.Services.AddSingleton<IJobRunner, FolderBackupJob>();
builder.Services.AddSingleton<IJobRunner, RestoreJob>();
builder.Services.AddHostedService<JobLoop>();
try
{
    await builder.Build().RunAsync();
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine($"Backup.Agent: {string.Join(" ", e.Failures)} Nothing was started.");
    return 2;
}
return 0;
