using Azure.Storage.Blobs;
using Marten;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>The real API in-process (WebApplicationFactory) on its own PostgreSQL schema, disk store and vault container.</summary>
public sealed class ApiFactory : WebApplicationFactory<Program>, IAsyncLifetime
{
    public string Schema { get; } = TestServices.NewSchema("api");
    public string DiskStore { get; } = Directory.CreateTempSubdirectory("backup-disk-").FullName;
    public string VaultContainer { get; } = $"vault-{Guid.NewGuid():N}";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("ConnectionStrings:Marten", TestServices.Postgres);
        builder.UseSetting("ConnectionStrings:Vault", TestServices.Vault);
        builder.UseSetting("Backup:Schema", Schema);
        builder.UseSetting("Backup:DiskStore", DiskStore);
        builder.UseSetting("Backup:VaultContainer", VaultContainer);
        builder.UseSetting("Backup:RunDaemon", "true");
    }

    public IDocumentStore Store => Services.GetRequiredService<IDocumentStore>();

    public Task<long> EventCountAsync() => TestServices.CountEventsAsync(Schema);

    public ValueTask InitializeAsync()
    {
        _ = Server; // start the host now, so the schema exists before the first test
        return ValueTask.CompletedTask;
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await TestServices.DropSchemaAsync(Schema);
        await new BlobContainerClient(TestServices.Vault, VaultContainer).DeleteIfExistsAsync();
        Directory.Delete(DiskStore, recursive: true);
    }
}
