extern alias workers;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using Backup.Commands.Common;
using Backup.Commands.RecoveryPoints;
using Backup.Storage.Contracts;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.Storage.Vault;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using workers::Backup.Workers.TransferringToVault;

namespace Backup.IntegrationTests.Infrastructure;

/// <summary>A backup an agent took over the real protocol: its own agent, group and data source, and the packs it uploaded in order.</summary>
public sealed record AgentBackup(EnrolAgentResponse Agent, Guid GroupId, Guid DataSourceId, Guid RecoveryPointId, IReadOnlyList<TestPack> Packs)
{
    public long PackBytes => Packs.Sum(p => (long)p.Bytes.Length);
}

public static class AgentBackups
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Enrols an agent, protects a folder of a new group and has the agent claim, upload two data packs and a tree pack, and commit.</summary>
    public static async Task<AgentBackup> CreatedBackupAsync(this ApiClient client, long bytesRead = 12000)
    {
        var agent = await client.EnrolAsync();
        var group = await client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var source = await client.AddFolderAsync(group, agent.AgentId, $"/srv/{Guid.NewGuid():N}");
        var rp = await client.RequestBackupAsync(source);
        (await client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var a = TestPacks.Build(RandomNumberGenerator.GetBytes(3000), RandomNumberGenerator.GetBytes(4000));
        var b = TestPacks.Build(RandomNumberGenerator.GetBytes(5000));
        var tree = TestPacks.Build(RandomNumberGenerator.GetBytes(200));
        foreach (var pack in new[] { a, b, tree }) await client.UploadPackAsync(agent, rp, pack);
        var commit = await client.CommitAsync(agent, rp,
            new CompleteBackupRequest([tree.Chunks[0].ToString()], TestPacks.Base64([.. a.Chunks, .. b.Chunks]), 3, 0, bytesRead));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        return new AgentBackup(agent, group, source, rp, [a, b, tree]);
    }

    /// <summary>Copies the recovery point to the API's vault with the workers' own copier, as the vault-copy subscription does.</summary>
    public static async Task CopyToVaultAsync(this ApiFactory api, Guid recoveryPointId)
    {
        IReadOnlyList<string> packIds;
        await using (var session = api.Store.QuerySession())
            packIds = (await session.Events.FetchStreamAsync(recoveryPointId, token: Ct)).Select(e => e.Data).OfType<RecoveryPointCreated>().Single().PackIds;
        var copier = new VaultCopier(api.Services, api.Services.GetRequiredService<DiskStore>(), api.Services.GetRequiredService<VaultStore>(),
            TimeProvider.System, Options.Create(new VaultCopyOptions()), NullLogger<VaultCopier>.Instance);
        await copier.CopyAsync(recoveryPointId, packIds, new CommandMetadata { Actor = VaultCopySubscription.Actor, CorrelationId = $"test-copy-{recoveryPointId:N}" }, Ct);
    }
}
