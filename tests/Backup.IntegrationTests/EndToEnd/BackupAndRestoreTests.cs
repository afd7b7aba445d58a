using System.Net;
using System.Runtime.Versioning;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Azure.Storage.Blobs;
using Backup.IntegrationTests.Infrastructure;

namespace Backup.IntegrationTests.EndToEnd;

/// <summary>
/// The whole product as a user runs it: the API, the workers and a real agent process, each its own OS
/// process, on real PostgreSQL and Azurite. A folder is backed up to the server's disk, copied to the vault
/// by the workers, and restored from each tier into alternate folders, byte for byte, with modes and mtimes.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class BackupAndRestoreTests : IAsyncLifetime
{
    private readonly string _schema = TestServices.NewSchema("e2e");
    private readonly string _container = $"vault-{Guid.NewGuid():N}";
    private readonly DirectoryInfo _work = Directory.CreateTempSubdirectory("backup-e2e-");
    private readonly List<ProductProcess> _processes = [];
    private ApiClient _client = null!;
    private string _baseUrl = "";
    private readonly string _adminKey = $"e2e-admin-{Guid.NewGuid():N}";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private Dictionary<string, string> Environment() => new()
    {
        ["ConnectionStrings__Marten"] = TestServices.Postgres,
        ["ConnectionStrings__Vault"] = TestServices.Vault,
        ["Backup__Schema"] = _schema,
        ["Backup__DiskStore"] = Path.Combine(_work.FullName, "disk-store"),
        ["Backup__VaultContainer"] = _container,
        ["Backup__BootstrapAdminKey"] = _adminKey,
        ["Logging__LogLevel__Default"] = "Information",
    };

    public async ValueTask InitializeAsync()
    {
        var (api, baseUrl) = await ProductProcess.StartApiAsync(Environment(), Ct);
        _processes.Add(api);
        _baseUrl = baseUrl;
        _client = new ApiClient(new HttpClient { BaseAddress = new Uri(_baseUrl), DefaultRequestHeaders = { Authorization = new("ApiKey", _adminKey) } });
        // Workers start after the API so the schema exists; they run the projections and the vault copy.
        _processes.Add(ProductProcess.Start("Backup.Workers", Environment()));
        await _client.CreateRepositoryKeyAsync();
    }

    [Fact]
    public async Task A_folder_is_backed_up_to_disk_copied_to_the_vault_and_restored_byte_exact_from_both()
    {
        var source = Directory.CreateDirectory(Path.Combine(_work.FullName, "protected"));
        BuildTree(source.FullName);

        var (agent, agentId) = await StartAgentAsync();

        var group = await _client.CreateGroupAsync("E2E servers");
        var dataSource = await _client.AddFolderAsync(group, agentId, source.FullName);
        var recoveryPoint = await _client.RequestBackupAsync(dataSource);

        var point = await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}",
            rp => rp.GetProperty("tier").GetString() == "Both", TimeSpan.FromSeconds(120));
        point.GetProperty("status").GetString().ShouldBe("Created");
        point.GetProperty("files").GetInt32().ShouldBe(SourceFiles(source.FullName).Count);
        point.GetProperty("bytesRead").GetInt64().ShouldBe(SourceFiles(source.FullName).Sum(f => new FileInfo(f).Length));
        point.GetProperty("partial").GetBoolean().ShouldBeFalse();

        // The vault really holds the packs and the manifest.
        var blobs = new BlobContainerClient(TestServices.Vault, _container).GetBlobsAsync(cancellationToken: Ct);
        var names = new List<string>();
        await foreach (var b in blobs) names.Add(b.Name);
        names.Count(n => n.StartsWith("packs/", StringComparison.Ordinal)).ShouldBe(point.GetProperty("packCount").GetInt32());
        names.ShouldContain($"manifests/{recoveryPoint:N}.json");
        names.ShouldContain("keys/repository.json", "the wrapped key must be in the vault so another server can restore with the passphrase");
        await ShouldNotHoldPlaintextAsync(names, source.FullName);

        await ShouldBeAuditedAsync(agentId);

        foreach (var tier in new[] { "Disk", "Vault" })
        {
            var target = Path.Combine(_work.FullName, $"restored-from-{tier}");
            var response = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{recoveryPoint}/restores", new { source = tier, targetPath = target }, Ct);
            response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
            var restoreId = await ApiClient.IdAsync(response);
            var restore = await _client.WaitForAsync($"/api/restores/{restoreId}",
                r => r.GetProperty("status").GetString() is "Completed" or "Failed", TimeSpan.FromSeconds(120));
            restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
            AssertSameTree(source.FullName, target);
        }

        await ShouldRestoreFromTheVaultAloneAsync(recoveryPoint, source.FullName);

        // Both copies pass the keyless consistency check (every pack read back against its id and the index).
        foreach (var tier in new[] { "Disk", "Vault" })
        {
            var check = await _client.Http.PostAsync($"/api/recovery-points/{recoveryPoint}/check?tier={tier}", null, Ct);
            var outcome = await check.Content.ReadFromJsonAsync<JsonElement>(Ct);
            check.StatusCode.ShouldBe(HttpStatusCode.OK, outcome.ToString());
            outcome.GetProperty("damaged").GetArrayLength().ShouldBe(0, $"{tier}: {outcome}");
            outcome.GetProperty("packsChecked").GetInt32().ShouldBe(point.GetProperty("packCount").GetInt32());
        }

        // Item-level restore into a folder that already holds the item: "keep both" puts it beside the original.
        var into = Path.Combine(_work.FullName, "restored-from-Disk");
        var item = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{recoveryPoint}/restores",
            new { source = "Disk", targetPath = into, paths = new[] { "projects/run.sh" }, ifExists = "KeepBoth" }, Ct);
        item.StatusCode.ShouldBe(HttpStatusCode.Accepted, await item.Content.ReadAsStringAsync(Ct));
        var itemRestore = await _client.WaitForAsync($"/api/restores/{await ApiClient.IdAsync(item)}",
            r => r.GetProperty("status").GetString() is "Completed" or "Failed", TimeSpan.FromSeconds(60));
        itemRestore.GetProperty("status").GetString().ShouldBe("Completed", itemRestore.ToString());
        itemRestore.GetProperty("files").GetInt32().ShouldBe(1);
        Hash(Path.Combine(into, "projects", "run (restored).sh")).ShouldBe(Hash(Path.Combine(source.FullName, "projects", "run.sh")));

        // The next run of an unchanged folder sends no pack: the metadata cache vouches for every file and the server holds every chunk.
        var again = await _client.RequestBackupAsync(dataSource);
        var second = await _client.WaitForAsync($"/api/recovery-points/{again}",
            rp => rp.GetProperty("status").GetString() is "Created" or "Failed", TimeSpan.FromSeconds(120));
        second.GetProperty("status").GetString().ShouldBe("Created", second.ToString());
        second.GetProperty("packsWrittenToDisk").GetInt32().ShouldBe(0, "an unchanged folder adds no pack");
        second.GetProperty("files").GetInt32().ShouldBe(point.GetProperty("files").GetInt32());
        agent.Output.ShouldContain($"{SourceFiles(source.FullName).Count} files ({SourceFiles(source.FullName).Count} unchanged, not read)");

        // The item catalog the real agent sent: where are the copies of projects/run.sh? In both points, as it is on disk.
        var runSh = new FileInfo(Path.Combine(source.FullName, "projects", "run.sh"));
        var found = (await _client.GetJsonAsync($"/api/items?name=RUN.SH&dataSourceId={dataSource}")).GetProperty("items").EnumerateArray().ShouldHaveSingleItem();
        found.GetProperty("path").GetString().ShouldBe(runSh.FullName);
        found.GetProperty("relativePath").GetString().ShouldBe("projects/run.sh");
        var copies = found.GetProperty("copies").EnumerateArray().ToList();
        copies.Select(c => c.GetProperty("recoveryPointId").GetGuid()).ShouldBe([again, recoveryPoint]);
        copies.ShouldAllBe(c => c.GetProperty("size").GetInt64() == runSh.Length);
        copies.ShouldAllBe(c => Math.Abs((c.GetProperty("modifiedAt").GetDateTimeOffset() - runSh.LastWriteTimeUtc).TotalMilliseconds) < 1);
        copies[1].GetProperty("inVault").GetBoolean().ShouldBeTrue();
        (await _client.GetJsonAsync($"/api/items?under={Uri.EscapeDataString(source.FullName)}&limit=200")).GetProperty("items").GetArrayLength()
            .ShouldBe(Directory.GetFileSystemEntries(source.FullName, "*", SearchOption.AllDirectories).Length);

        await ShouldCatalogueLaterRunsAsync(agent, dataSource, source.FullName, [again, recoveryPoint]);
        // Every pack on disk belongs to one of the points: the offline check reads them all.
        await ShouldCheckOfflineAsync(Directory.EnumerateFiles(Path.Combine(_work.FullName, "disk-store", "packs"), "*", SearchOption.AllDirectories).Count());
    }

    /// <summary>
    /// Later runs send the item catalog only what changed since the agent's last committed point (its item snapshot); when that
    /// snapshot is out of step with the server (here: its base point overwritten), the server refuses the changes and the agent
    /// sends every item, so the catalog is right either way.
    /// </summary>
    private async Task ShouldCatalogueLaterRunsAsync(ProductProcess agent, Guid dataSource, string root, Guid[] earlier)
    {
        async Task<List<(Guid Rp, long Size)>> CopiesAsync(string relative) =>
            (await _client.GetJsonAsync($"/api/items?path={Uri.EscapeDataString(Path.Combine(root, relative))}&dataSourceId={dataSource}"))
            .GetProperty("items").EnumerateArray().SelectMany(i => i.GetProperty("copies").EnumerateArray())
            .Select(c => (c.GetProperty("recoveryPointId").GetGuid(), c.GetProperty("size").GetInt64())).ToList();
        async Task<Guid> BackUpAsync()
        {
            var rp = await _client.RequestBackupAsync(dataSource);
            var done = await _client.WaitForAsync($"/api/recovery-points/{rp}",
                p => p.GetProperty("status").GetString() is "Created" or "Failed", TimeSpan.FromSeconds(120));
            done.GetProperty("status").GetString().ShouldBe("Created", done.ToString() + "\n" + agent.Output);
            return rp;
        }
        var allItems = () => Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Length;

        File.WriteAllText(Path.Combine(root, "projects", "run.sh"), "#!/bin/sh\necho changed\n");
        File.Delete(Path.Combine(root, "readme.txt"));
        File.WriteAllText(Path.Combine(root, "projects", "added.txt"), "new\n");
        var third = await BackUpAsync();
        (await CopiesAsync("projects/run.sh")).ShouldBe([(third, 23), (earlier[0], 18), (earlier[1], 18)]);
        (await CopiesAsync("projects/added.txt")).ShouldBe([(third, 4)]);
        (await CopiesAsync("readme.txt")).Select(c => c.Rp).ShouldBe(earlier);
        (await _client.GetJsonAsync($"/api/items?under={Uri.EscapeDataString(root)}&limit=200"))
            .GetProperty("items").EnumerateArray().Count(i => i.GetProperty("copies").EnumerateArray().Any(c => c.GetProperty("recoveryPointId").GetGuid() == third))
            .ShouldBe(allItems());
        agent.Output.ShouldNotContain("sending every item");

        var snapshot = Directory.GetFiles(Path.Combine(_work.FullName, "e2e-machine-state", "cache"), "*.items").ShouldHaveSingleItem();
        var bytes = File.ReadAllBytes(snapshot);
        RandomNumberGenerator.Fill(bytes.AsSpan(8, 16)); // the base point: one the server never catalogued
        File.WriteAllBytes(snapshot, bytes);
        File.WriteAllText(Path.Combine(root, "projects", "added.txt"), "newer\n");
        var fourth = await BackUpAsync();
        agent.Output.ShouldContain("sending every item");
        (await CopiesAsync("projects/added.txt")).ShouldBe([(fourth, 6), (third, 4)]);
        (await CopiesAsync("projects/run.sh")).Select(c => c.Rp).ShouldBe([fourth, third, earlier[0], earlier[1]]);
    }

    /// <summary>
    /// The offline deep check (every blob decrypted and checked against its id) finds both copies sound; then a flipped
    /// byte in one pack on disk is found and named, with the files that need it.
    /// </summary>
    private async Task ShouldCheckOfflineAsync(int packs)
    {
        var passphrase = Path.Combine(_work.FullName, "check.passphrase");
        File.WriteAllText(passphrase, ApiClient.Passphrase + "\n");
        var disk = Path.Combine(_work.FullName, "disk-store");
        async Task<(int Code, string Output)> CheckAsync(params string[] where)
        {
            await using var check = ProductProcess.Start("Backup.Agent", new Dictionary<string, string>(), ["check", .. where, "--passphrase-file", passphrase, "--deep"]);
            var code = await check.ExitCodeAsync(TimeSpan.FromSeconds(120));
            return (code, check.Output);
        }

        var (vaultCode, vaultOutput) = await CheckAsync("--vault", TestServices.Vault, "--container", _container);
        vaultCode.ShouldBe(0, vaultOutput);
        vaultOutput.ShouldContain("no damage found");
        var (diskCode, diskOutput) = await CheckAsync("--disk-store", disk);
        diskCode.ShouldBe(0, diskOutput);
        diskOutput.ShouldContain($"{packs} pack(s)");

        var victim = Directory.EnumerateFiles(Path.Combine(disk, "packs"), "*", SearchOption.AllDirectories).OrderByDescending(f => new FileInfo(f).Length).First();
        var bytes = File.ReadAllBytes(victim);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(victim, bytes);
        var (damagedCode, damagedOutput) = await CheckAsync("--disk-store", disk);
        damagedCode.ShouldBe(1, damagedOutput);
        damagedOutput.ShouldContain($"pack {Path.GetFileName(victim)}: its content hashes to");
        damagedOutput.ShouldContain("file(s) need missing or damaged chunks");
    }

    /// <summary>
    /// Disaster recovery: with the backup server gone, the vault's connection string and the passphrase are enough
    /// (the key file and the packs' own indexes are in the vault). A wrong passphrase restores nothing.
    /// </summary>
    private async Task ShouldRestoreFromTheVaultAloneAsync(Guid recoveryPoint, string sourceRoot)
    {
        var wrong = Path.Combine(_work.FullName, "wrong.passphrase");
        File.WriteAllText(wrong, "not the passphrase, sorry\n");
        var right = Path.Combine(_work.FullName, "right.passphrase");
        File.WriteAllText(right, ApiClient.Passphrase + "\n");
        string[] Args(string target, string passphrase) =>
            ["restore-from-vault", "--vault", TestServices.Vault, "--container", _container, "--recovery-point", recoveryPoint.ToString(),
             "--target", target, "--passphrase-file", passphrase];

        var refused = Path.Combine(_work.FullName, "dr-refused");
        await using (var attempt = ProductProcess.Start("Backup.Agent", new Dictionary<string, string>(), Args(refused, wrong)))
        {
            (await attempt.ExitCodeAsync(TimeSpan.FromSeconds(60))).ShouldBe(3, attempt.Output);
            attempt.Output.ShouldContain("passphrase does not open");
        }
        Directory.Exists(refused).ShouldBeFalse();

        var target = Path.Combine(_work.FullName, "dr-restored");
        await using var restore = ProductProcess.Start("Backup.Agent", new Dictionary<string, string>(), Args(target, right));
        (await restore.ExitCodeAsync(TimeSpan.FromSeconds(120))).ShouldBe(0, restore.Output);
        AssertSameTree(sourceRoot, target);
    }

    /// <summary>Encrypted on premises: no stored pack contains a recognisable piece of any source file or name.</summary>
    private async Task ShouldNotHoldPlaintextAsync(IEnumerable<string> blobNames, string sourceRoot)
    {
        var container = new BlobContainerClient(TestServices.Vault, _container);
        var needles = new[] { "hello backup", "non-ASCII names survive", "readme.txt", "secret.txt", "# café" }
            .Select(System.Text.Encoding.UTF8.GetBytes).ToList();
        needles.Add(File.ReadAllBytes(Path.Combine(sourceRoot, "projects", "2026", "big-50MiB.bin")).AsSpan(1 << 20, 64).ToArray());
        foreach (var name in blobNames.Where(n => n.StartsWith("packs/", StringComparison.Ordinal) || n.StartsWith("manifests/", StringComparison.Ordinal)))
        {
            var bytes = (await container.GetBlobClient(name).DownloadContentAsync(Ct)).Value.Content.ToArray();
            foreach (var needle in needles) bytes.AsSpan().IndexOf(needle).ShouldBe(-1, $"{name} holds plaintext");
        }
    }

    /// <summary>
    /// A pack on the server's disk that no longer holds what was written (bit rot, a bad sector) does not fail a restore from
    /// disk while the vault holds a copy: the agent finds the damage (hash, blob, chunk id) and reads that pack from the vault.
    /// </summary>
    [Fact]
    public async Task A_restore_from_disk_reads_the_vault_copy_of_every_damaged_disk_pack_and_is_byte_exact()
    {
        var source = Directory.CreateDirectory(Path.Combine(_work.FullName, "rotting"));
        BuildTree(source.FullName);
        var (agent, agentId) = await StartAgentAsync(machine: "rot-machine");
        var dataSource = await _client.AddFolderAsync(await _client.CreateGroupAsync("Rot"), agentId, source.FullName);
        var recoveryPoint = await _client.RequestBackupAsync(dataSource);
        await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}", rp => rp.GetProperty("tier").GetString() == "Both", TimeSpan.FromSeconds(120));

        // One byte flipped in the middle of every pack on disk: the tree's packs and the data's.
        var packs = Directory.EnumerateFiles(Path.Combine(_work.FullName, "disk-store", "packs"), "*", SearchOption.AllDirectories).ToList();
        packs.ShouldNotBeEmpty();
        foreach (var pack in packs)
        {
            await using var file = new FileStream(pack, FileMode.Open, FileAccess.ReadWrite);
            file.Position = file.Length / 2;
            var b = file.ReadByte();
            file.Position = file.Length / 2;
            file.WriteByte((byte)(b ^ 0x5a));
        }

        var target = Path.Combine(_work.FullName, "restored-despite-rot");
        var response = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{recoveryPoint}/restores", new { source = "Disk", targetPath = target }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var restore = await _client.WaitForAsync($"/api/restores/{await ApiClient.IdAsync(response)}",
            r => r.GetProperty("status").GetString() is "Completed" or "CompletedWithErrors" or "Failed", TimeSpan.FromSeconds(120));

        restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
        AssertSameTree(source.FullName, target);
        agent.Output.ShouldContain("is damaged");
    }

    [Fact]
    public async Task A_backup_the_agent_cannot_take_is_recorded_as_failed_with_its_reason()
    {
        var (_, agentId) = await StartAgentAsync();

        var missing = Path.Combine(_work.FullName, "was-never-there");
        var group = await _client.CreateGroupAsync("Gone");
        var recoveryPoint = await _client.RequestBackupAsync(await _client.AddFolderAsync(group, agentId, missing));

        var point = await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}",
            rp => rp.GetProperty("status").GetString() == "Failed", TimeSpan.FromSeconds(60));
        point.GetProperty("failureReason").GetString()!.ShouldContain(missing);
        point.GetProperty("tier").GetString().ShouldBe("None");
        Directory.EnumerateFiles(Path.Combine(_work.FullName, "disk-store"), "*", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}tmp{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}keys{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ShouldBeEmpty("a failed run must not leave a manifest or packs claimed");
    }

    [Fact]
    public async Task Excluded_items_are_left_out_by_the_real_agent_and_absent_from_the_restore()
    {
        var (agent, agentId) = await StartAgentAsync(machine: "filter-machine");
        var source = Directory.CreateDirectory(Path.Combine(_work.FullName, "filtered"));
        File.WriteAllText(Path.Combine(source.FullName, "keep.txt"), "keep me\n");
        File.WriteAllText(Path.Combine(source.FullName, "noise.log"), "log line\n");
        Directory.CreateDirectory(Path.Combine(source.FullName, "docs", "cache"));
        File.WriteAllText(Path.Combine(source.FullName, "docs", "plan.docx"), "plan\n");
        File.WriteAllText(Path.Combine(source.FullName, "docs", "cache", "blob.bin"), "cached\n");
        var group = await _client.CreateGroupAsync("Filtered");
        var added = await _client.Http.PostAsJsonAsync($"/api/protection-groups/{group}/data-sources",
            new { agentId, kind = "Folder", path = source.FullName, exclude = new[] { "*.log", "cache/" } }, Ct);
        added.StatusCode.ShouldBe(HttpStatusCode.Created, await added.Content.ReadAsStringAsync(Ct));
        var recoveryPoint = await _client.RequestBackupAsync(await ApiClient.IdAsync(added));

        var point = await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}",
            rp => rp.GetProperty("status").GetString() is "Created" or "Failed", TimeSpan.FromSeconds(90));
        point.GetProperty("status").GetString().ShouldBe("Created", point.ToString() + "\n" + agent.Output);
        point.GetProperty("files").GetInt32().ShouldBe(2);
        point.GetProperty("skippedItems").GetInt32().ShouldBe(0, "excluded items are out of scope, not skipped");

        var target = Path.Combine(_work.FullName, "filtered-restored");
        var response = await _client.Http.PostAsJsonAsync($"/api/recovery-points/{recoveryPoint}/restores", new { source = "Disk", targetPath = target }, Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(Ct));
        var restore = await _client.WaitForAsync($"/api/restores/{await ApiClient.IdAsync(response)}",
            r => r.GetProperty("status").GetString() is "Completed" or "Failed", TimeSpan.FromSeconds(90));
        restore.GetProperty("status").GetString().ShouldBe("Completed", restore.ToString() + "\n" + agent.Output);
        Directory.EnumerateFileSystemEntries(target, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(target, p)).Order(StringComparer.Ordinal)
            .ShouldBe(["docs", Path.Combine("docs", "plan.docx"), "keep.txt"]);
        File.ReadAllText(Path.Combine(target, "keep.txt")).ShouldBe("keep me\n");
    }

    [Fact]
    public async Task An_agent_with_the_wrong_passphrase_fails_its_backup_with_a_clear_reason_and_sends_nothing()
    {
        var (_, agentId) = await StartAgentAsync("this is not the passphrase at all", "wrong-key-machine");
        var source = Directory.CreateDirectory(Path.Combine(_work.FullName, "guarded"));
        File.WriteAllText(Path.Combine(source.FullName, "secret.txt"), "top secret\n");
        var group = await _client.CreateGroupAsync("Wrong key");
        var recoveryPoint = await _client.RequestBackupAsync(await _client.AddFolderAsync(group, agentId, source.FullName));

        var point = await _client.WaitForAsync($"/api/recovery-points/{recoveryPoint}",
            rp => rp.GetProperty("status").GetString() == "Failed", TimeSpan.FromSeconds(60));
        point.GetProperty("failureReason").GetString()!.ShouldContain("passphrase");
        Directory.EnumerateFiles(Path.Combine(_work.FullName, "disk-store", "packs"), "*", SearchOption.AllDirectories)
            .ShouldBeEmpty("nothing may be sent without the right key");
    }

    /// <summary>Starts the real agent process with a fresh one-time token and waits until it has enrolled.</summary>
    private async Task<(ProductProcess Process, Guid AgentId)> StartAgentAsync(string passphrase = ApiClient.Passphrase, string machine = "e2e-machine")
    {
        var token = await _client.IssueTokenAsync();
        var passphraseFile = Path.Combine(_work.FullName, $"{machine}.passphrase");
        File.WriteAllText(passphraseFile, passphrase + "\n");
        var agent = ProductProcess.Start("Backup.Agent", new Dictionary<string, string>(),
            $"--Agent:Server={_baseUrl}/", $"--Agent:EnrolmentToken={token}", $"--Agent:StateDirectory={Path.Combine(_work.FullName, $"{machine}-state")}",
            $"--Agent:MachineName={machine}", "--Agent:PollInterval=00:00:00.300", $"--Agent:PassphraseFile={passphraseFile}");
        _processes.Add(agent);
        var agentId = await WaitAsync(async () =>
        {
            var agents = await _client.GetJsonAsync("/api/agents");
            return agents.EnumerateArray().Where(a => a.GetProperty("machineName").GetString() == machine)
                .Select(a => (Guid?)a.GetProperty("id").GetGuid()).FirstOrDefault();
        }, agent);
        return (agent, agentId);
    }

    /// <summary>
    /// The workers' daemon chains every event (nothing left pending, nothing broken), and the audit trail tells who did
    /// what: the agent created the recovery point, the vault-copy worker copied it in the same correlation.
    /// </summary>
    private async Task ShouldBeAuditedAsync(Guid agentId)
    {
        var verification = await _client.WaitForAsync("/api/audit/verify",
            v => v.GetProperty("pending").GetInt64() == 0 || !v.GetProperty("intact").GetBoolean(), TimeSpan.FromSeconds(60));
        verification.GetProperty("intact").GetBoolean().ShouldBeTrue(verification.ToString());
        verification.GetProperty("verified").GetInt64().ShouldBeGreaterThan(0);

        var created = (await _client.GetJsonAsync("/api/audit/events?eventType=recovery_point_created.v1")).GetProperty("items").EnumerateArray().Single();
        created.GetProperty("actor").GetString().ShouldBe($"agent:{agentId}");
        created.GetProperty("causationId").GetString().ShouldBe("CompleteBackup");
        var copied = (await _client.GetJsonAsync("/api/audit/events?eventType=vault_transfer_completed.v1")).GetProperty("items").EnumerateArray().Single();
        copied.GetProperty("actor").GetString().ShouldBe("worker:vault-copy");
        copied.GetProperty("correlationId").GetString().ShouldBe(created.GetProperty("correlationId").GetString());
        copied.GetProperty("causationId").GetString().ShouldBe(created.GetProperty("eventId").GetString());
    }

    private static void BuildTree(string root)
    {
        var nested = Directory.CreateDirectory(Path.Combine(root, "projects", "2026", "q4", "deep")).FullName;
        File.WriteAllText(Path.Combine(root, "readme.txt"), "hello backup\n");
        File.WriteAllBytes(Path.Combine(root, "empty.bin"), []);
        File.WriteAllBytes(Path.Combine(nested, "also-empty"), []);
        Directory.CreateDirectory(Path.Combine(root, "empty-dir"));
        File.WriteAllText(Path.Combine(root, "projects", "Ünïcødé ß 名字 файл.txt"), "non-ASCII names survive\n");
        Directory.CreateDirectory(Path.Combine(root, "répertoire-é"));
        File.WriteAllText(Path.Combine(root, "répertoire-é", "naïve.md"), "# café\n");

        var big = Path.Combine(root, "projects", "2026", "big-50MiB.bin");
        using (var stream = File.Create(big))
        {
            var buffer = new byte[1 << 20];
            for (var i = 0; i < 50; i++)
            {
                RandomNumberGenerator.Fill(buffer);
                stream.Write(buffer);
            }
        }
        for (var i = 0; i < 30; i++) File.WriteAllText(Path.Combine(nested, $"small-{i:D2}.txt"), new string('x', i * 37));

        var script = Path.Combine(root, "projects", "run.sh");
        File.WriteAllText(script, "#!/bin/sh\necho hi\n");
        File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        var secret = Path.Combine(root, "projects", "secret.txt");
        File.WriteAllText(secret, "private\n");
        File.SetUnixFileMode(secret, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.SetLastWriteTimeUtc(secret, new DateTime(2001, 2, 3, 4, 5, 6, DateTimeKind.Utc).AddTicks(1234567));
        File.SetLastWriteTimeUtc(big, new DateTime(2019, 12, 31, 23, 59, 59, DateTimeKind.Utc));
        Directory.SetLastWriteTimeUtc(Path.Combine(root, "empty-dir"), new DateTime(2010, 1, 1, 0, 0, 0, DateTimeKind.Utc));
    }

    private static List<string> SourceFiles(string root) => Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).ToList();

    private static void AssertSameTree(string expectedRoot, string actualRoot)
    {
        static List<string> Relative(string root) => Directory.EnumerateFileSystemEntries(root, "*", SearchOption.AllDirectories)
            .Select(p => Path.GetRelativePath(root, p)).Order(StringComparer.Ordinal).ToList();

        var expected = Relative(expectedRoot);
        Relative(actualRoot).ShouldBe(expected);
        foreach (var relative in expected)
        {
            var e = Path.Combine(expectedRoot, relative);
            var a = Path.Combine(actualRoot, relative);
            if (Directory.Exists(e))
            {
                Directory.Exists(a).ShouldBeTrue(relative);
                File.GetUnixFileMode(a).ShouldBe(File.GetUnixFileMode(e), relative);
                Directory.GetLastWriteTimeUtc(a).ShouldBe(Directory.GetLastWriteTimeUtc(e), relative);
                continue;
            }
            new FileInfo(a).Length.ShouldBe(new FileInfo(e).Length, relative);
            Hash(a).ShouldBe(Hash(e), relative);
            File.GetUnixFileMode(a).ShouldBe(File.GetUnixFileMode(e), relative);
            File.GetLastWriteTimeUtc(a).ShouldBe(File.GetLastWriteTimeUtc(e), relative);
        }
    }

    private static string Hash(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    private static async Task<T> WaitAsync<T>(Func<Task<T?>> probe, ProductProcess process) where T : struct
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            if (await probe() is { } value) return value;
            await Task.Delay(200, Ct);
        }
        throw new TimeoutException("Timed out; process output:\n" + process.Output);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        await TestServices.DropSchemaAsync(_schema);
        await new BlobContainerClient(TestServices.Vault, _container).DeleteIfExistsAsync();
        _work.Delete(recursive: true);
    }
}
