using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Azure.Storage.Blobs;
using JasperFx.Events.Projections;
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

    /// <summary>Backup:BootstrapAdminKey of this API; every client it creates sends it unless told otherwise.</summary>
    public string AdminKey { get; } = $"test-admin-{Guid.NewGuid():N}";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("ConnectionStrings:Marten", TestServices.Postgres);
        builder.UseSetting("ConnectionStrings:Vault", TestServices.Vault);
        builder.UseSetting("Backup:Schema", Schema);
        builder.UseSetting("Backup:DiskStore", DiskStore);
        builder.UseSetting("Backup:VaultContainer", VaultContainer);
        builder.UseSetting("Backup:RunDaemon", "true");
        builder.UseSetting("Backup:BootstrapAdminKey", AdminKey);
        // Warnings and errors only: per-request info lines would bury a failing test's message in CI's output.
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
    }

    /// <summary>The default client is the bootstrap admin, so tests about something else need not care about access.</summary>
    protected override void ConfigureClient(HttpClient client)
    {
        base.ConfigureClient(client);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", AdminKey);
    }

    /// <summary>A client that sends no credential at all.</summary>
    public HttpClient CreateAnonymousClient()
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = null;
        return client;
    }

    /// <summary>A client holding a freshly issued API key with this role (admin, operator, auditor).</summary>
    public async Task<HttpClient> CreateClientAsync(string role)
    {
        var ct = TestContext.Current.CancellationToken;
        var response = await CreateClient().PostAsJsonAsync("/api/access/keys", new { name = $"{role}-{Guid.NewGuid():N}", role }, ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Created, await response.Content.ReadAsStringAsync(ct));
        var key = (await response.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("key").GetString()!;
        return CreateClientWithKey(key);
    }

    public HttpClient CreateClientWithKey(string key)
    {
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("ApiKey", key);
        return client;
    }

    /// <summary>
    /// Another host of this API on the same schema, disk store and vault (e.g. with its own clock or settings). It runs no
    /// projection daemon: the fixture's host runs them, and two daemons on one schema race to write the same progress row
    /// (a duplicate key that stops the loser's projections).
    /// </summary>
    public WebApplicationFactory<Program> WithHost(Action<IWebHostBuilder> configure) =>
        WithWebHostBuilder(b =>
        {
            configure(b);
            b.UseSetting("Backup:RunDaemon", "false");
        });

    public IDocumentStore Store => Services.GetRequiredService<IDocumentStore>();

    public Task<long> EventCountAsync() => TestServices.CountEventsAsync(Schema);

    /// <summary>
    /// Waits until the daemon's <paramref name="projection"/> has processed every event committed so far. A test that appended
    /// events and asserts on a view waits for this, not for a state of the view that may hold before those events are in it.
    /// </summary>
    public async Task WaitForProjectionAsync(string projection, TimeSpan? timeout = null)
    {
        var through = await TestServices.LastSequenceAsync(Schema);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        long progress;
        while ((progress = await Store.Storage.Database.ProjectionProgressFor(new ShardName(projection), TestContext.Current.CancellationToken)) < through)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The daemon's {projection} is at event {progress}, not yet at {through}.");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }

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
