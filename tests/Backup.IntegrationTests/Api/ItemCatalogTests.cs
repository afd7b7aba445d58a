using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Backup.Commands.Cataloguing;
using Backup.Commands.RecoveryPoints;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Contracts;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Marten;
using Microsoft.Extensions.DependencyInjection;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// The item catalog: "where are all the copies of this file". Agents commit their items over the real protocol; the catalog
/// answers by exact path, name pattern or folder, with each kept recovery point's size, mtime and tiers.
/// </summary>
public sealed class ItemCatalogTests(ApiFactory api) : IClassFixture<ApiFactory>
{
    private readonly ApiClient _client = new(api.CreateClient());
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // 100-ns ticks, as file systems report them; the catalog keeps microseconds.
    private static readonly DateTimeOffset T1 = new DateTimeOffset(2026, 3, 1, 10, 0, 0, TimeSpan.Zero).AddTicks(1_234_567);
    private static readonly DateTimeOffset T2 = T1.AddDays(1);
    private static DateTimeOffset Kept(DateTimeOffset t) => t.AddTicks(-(t.UtcTicks % 10));

    private static CatalogEntry File(string path, long size, DateTimeOffset mtime) => new(path, EntryKind.File, size, mtime);
    private static CatalogEntry Folder(string path) => new(path, EntryKind.Directory, 0, T1);

    private async Task<(EnrolAgentResponse Agent, Guid Source, string Root)> ProtectedFolderAsync()
    {
        var agent = await _client.EnrolAsync();
        var group = await _client.CreateGroupAsync($"g-{Guid.NewGuid():N}");
        var root = $"/srv/{Guid.NewGuid():N}";
        return (agent, await _client.AddFolderAsync(group, agent.AgentId, root), root);
    }

    /// <summary>A backup of <paramref name="source"/> committed with <paramref name="items"/>; returns the commit's response.</summary>
    private async Task<(Guid RecoveryPoint, HttpResponseMessage Commit)> BackupAsync(
        EnrolAgentResponse agent, Guid source, IReadOnlyList<CatalogEntry>? items, CatalogChanges? changes = null)
    {
        var rp = await _client.RequestBackupAsync(source);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        var (request, commit) = await CommitAsync(agent, rp, items, changes);
        return (rp, commit);
    }

    /// <summary>Uploads a pack for the running backup <paramref name="rp"/> and commits it with these items or changes.</summary>
    private async Task<(CompleteBackupRequest Request, HttpResponseMessage Commit)> CommitAsync(
        EnrolAgentResponse agent, Guid rp, IReadOnlyList<CatalogEntry>? items, CatalogChanges? changes)
    {
        var pack = TestPacks.Random(500);
        await _client.UploadPackAsync(agent, rp, pack);
        var request = new CompleteBackupRequest([pack.Chunks[0].ToString()], TestPacks.Base64(pack.Chunks), items?.Count ?? 0, 0, 500,
            Items: items, ItemChanges: changes);
        return (request, await _client.CommitAsync(agent, rp, request));
    }

    private async Task<Guid> CommittedAsync(EnrolAgentResponse agent, Guid source, IReadOnlyList<CatalogEntry> items)
    {
        var (rp, commit) = await BackupAsync(agent, source, items);
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));
        return rp;
    }

    private async Task<List<JsonElement>> ItemsAsync(string query) =>
        (await _client.GetJsonAsync($"/api/items?{query}")).GetProperty("items").EnumerateArray().ToList();

    private static List<(Guid Rp, long Size, DateTimeOffset Mtime)> Copies(JsonElement item) =>
        item.GetProperty("copies").EnumerateArray()
            .Select(c => (c.GetProperty("recoveryPointId").GetGuid(), c.GetProperty("size").GetInt64(), c.GetProperty("modifiedAt").GetDateTimeOffset()))
            .ToList();

    [Fact]
    public async Task Every_recovery_point_holding_a_file_is_listed_newest_first_with_the_files_size_and_mtime_in_each()
    {
        var (agent, source, root) = await ProtectedFolderAsync();
        var first = await CommittedAsync(agent, source,
            [Folder("docs"), File("docs/report.docx", 100, T1), File("docs/notes.txt", 10, T1), File("photo.jpg", 5000, T1)]);
        var second = await CommittedAsync(agent, source, // report changed, photo deleted, new.txt added, notes untouched
            [Folder("docs"), File("docs/report.docx", 120, T2), File("docs/notes.txt", 10, T1), File("docs/new.txt", 7, T2)]);
        var third = await CommittedAsync(agent, source, // nothing changed
            [Folder("docs"), File("docs/report.docx", 120, T2), File("docs/notes.txt", 10, T1), File("docs/new.txt", 7, T2)]);

        await using (var session = api.Store.QuerySession())
        {
            // A backup in which nothing changed adds its point to the catalog and not a single item version.
            var unchanged = (await session.Events.FetchStreamAsync(ItemCatalog.StreamId(third), token: Ct)).Select(e => e.Data).OfType<ItemsCatalogued>().ShouldHaveSingleItem();
            // Not on the point's own stream, which every pack upload and every pack a restore reads loads again.
            (await session.Events.FetchStreamAsync(first, token: Ct)).ShouldNotContain(e => e.Data is ItemsCatalogued);
            (unchanged.Ordinal, unchanged.Added.Count, unchanged.Removed.Count).ShouldBe((3, 0, 0));
        }

        var report = (await ItemsAsync($"path={Uri.EscapeDataString($"{root}/docs/report.docx")}")).ShouldHaveSingleItem();
        report.GetProperty("dataSourceId").GetGuid().ShouldBe(source);
        report.GetProperty("relativePath").GetString().ShouldBe("docs/report.docx");
        Copies(report).ShouldBe([(third, 120, Kept(T2)), (second, 120, Kept(T2)), (first, 100, Kept(T1))]);
        report.GetProperty("copies").EnumerateArray().ShouldAllBe(c => c.GetProperty("onDisk").GetBoolean() && !c.GetProperty("inVault").GetBoolean());

        Copies((await ItemsAsync($"path={Uri.EscapeDataString($"{root}/photo.jpg")}")).ShouldHaveSingleItem()).ShouldBe([(first, 5000, Kept(T1))]);
        Copies((await ItemsAsync($"path={Uri.EscapeDataString($"{root}/docs/notes.txt")}")).ShouldHaveSingleItem())
            .Select(c => c.Rp).ShouldBe([third, second, first]);

        // A name pattern, case-insensitive, narrowed to the data source; items in path order.
        var texts = await ItemsAsync($"name=*.TXT&dataSourceId={source}");
        texts.Select(i => i.GetProperty("path").GetString()).ShouldBe([$"{root}/docs/new.txt", $"{root}/docs/notes.txt"]);
        Copies(texts[0]).Select(c => c.Rp).ShouldBe([third, second]);

        // Everything under a folder (not the folder itself).
        (await ItemsAsync($"under={Uri.EscapeDataString($"{root}/docs/")}")).Select(i => i.GetProperty("relativePath").GetString())
            .ShouldBe(["docs/new.txt", "docs/notes.txt", "docs/report.docx"]);
        (await ItemsAsync($"path={Uri.EscapeDataString($"{root}/docs/missing.txt")}")).ShouldBeEmpty();

        // "Where are all the copies of this file": an auditor's key (read only) gets the same answer.
        var auditor = new ApiClient(await api.CreateClientAsync("auditor"));
        var seen = (await auditor.GetJsonAsync($"/api/items?path={Uri.EscapeDataString($"{root}/docs/report.docx")}")).GetProperty("items")
            .EnumerateArray().ShouldHaveSingleItem();
        Copies(seen).ShouldBe([(third, 120, Kept(T2)), (second, 120, Kept(T2)), (first, 100, Kept(T1))]);
    }

    [Fact]
    public async Task Expired_and_deleted_points_drop_out_and_a_vault_copy_shows_on_each_item()
    {
        var (agent, source, root) = await ProtectedFolderAsync();
        var first = await CommittedAsync(agent, source, [File("a.bin", 1, T1), File("gone.bin", 2, T1)]);
        var second = await CommittedAsync(agent, source, [File("a.bin", 1, T1)]);
        await Task.Delay(20, Ct);
        var beforeCopy = DateTimeOffset.UtcNow;
        await Task.Delay(20, Ct);
        await api.CopyToVaultAsync(second);

        var a = (await ItemsAsync($"path={Uri.EscapeDataString($"{root}/a.bin")}")).ShouldHaveSingleItem();
        var copies = a.GetProperty("copies").EnumerateArray().ToList();
        copies.Select(c => (c.GetProperty("recoveryPointId").GetGuid(), c.GetProperty("onDisk").GetBoolean(), c.GetProperty("inVault").GetBoolean()))
            .ShouldBe([(second, true, true), (first, true, false)]);

        await using (var session = api.Store.LightweightSession())
        {
            // What the retention worker appends when the disk range has passed.
            session.Events.Append(first, new RecoveryPointExpired(first, StorageTier.Disk, "retention", DateTimeOffset.UtcNow));
            await session.SaveChangesAsync(Ct);
        }
        Copies((await ItemsAsync($"path={Uri.EscapeDataString($"{root}/a.bin")}")).ShouldHaveSingleItem()).Select(c => c.Rp).ShouldBe([second]);
        (await ItemsAsync($"path={Uri.EscapeDataString($"{root}/gone.bin")}")).ShouldBeEmpty(); // only the expired point held it

        await using (var session = api.Store.LightweightSession())
        {
            session.Events.Append(second, new RecoveryPointExpired(second, StorageTier.Disk, "retention", DateTimeOffset.UtcNow));
            await session.SaveChangesAsync(Ct);
        }
        var vaultOnly = (await ItemsAsync($"path={Uri.EscapeDataString($"{root}/a.bin")}")).ShouldHaveSingleItem().GetProperty("copies").EnumerateArray().Single();
        (vaultOnly.GetProperty("onDisk").GetBoolean(), vaultOnly.GetProperty("inVault").GetBoolean()).ShouldBe((false, true));

        // As of before the vault copy and the expiries: both points on disk only, and gone.bin still there.
        var asOf = $"&asOf={Uri.EscapeDataString(beforeCopy.ToString("O"))}";
        (await ItemsAsync($"path={Uri.EscapeDataString($"{root}/a.bin")}{asOf}")).ShouldHaveSingleItem().GetProperty("copies").EnumerateArray()
            .Select(c => (c.GetProperty("recoveryPointId").GetGuid(), c.GetProperty("onDisk").GetBoolean(), c.GetProperty("inVault").GetBoolean()))
            .ShouldBe([(second, true, false), (first, true, false)]);
        Copies((await ItemsAsync($"path={Uri.EscapeDataString($"{root}/gone.bin")}{asOf}")).ShouldHaveSingleItem()).Select(c => c.Rp).ShouldBe([first]);
        (await ItemsAsync($"path={Uri.EscapeDataString($"{root}/a.bin")}&asOf={Uri.EscapeDataString(T1.AddYears(-1).ToString("O"))}")).ShouldBeEmpty();
    }

    [Fact]
    public async Task The_same_name_in_two_data_sources_is_two_items_and_pages_walk_them_all_once()
    {
        var (agentA, sourceA, _) = await ProtectedFolderAsync();
        var (agentB, sourceB, _) = await ProtectedFolderAsync();
        var name = $"budget-{Guid.NewGuid():N}";
        await CommittedAsync(agentA, sourceA, [File($"{name}.xlsx", 1, T1), File($"x/{name}.xlsx", 2, T1), File($"y/{name}.xlsx", 3, T1)]);
        await CommittedAsync(agentB, sourceB, [File($"{name}.xlsx", 4, T1), File($"z/{name}.XLSX", 5, T1)]);

        var seen = new List<(Guid, string)>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await _client.GetJsonAsync($"/api/items?name={name}.xlsx&limit=2" + (after is null ? "" : $"&after={after}"));
            seen.AddRange(page.GetProperty("items").EnumerateArray().Select(i => (i.GetProperty("dataSourceId").GetGuid(), i.GetProperty("relativePath").GetString()!)));
            after = page.GetProperty("nextAfter").ValueKind == JsonValueKind.Null ? null : page.GetProperty("nextAfter").GetString();
            pages++;
        }
        while (after is not null);

        pages.ShouldBe(3);
        seen.Count.ShouldBe(5);
        seen.Distinct().Count().ShouldBe(5);
        seen.Count(s => s.Item1 == sourceB).ShouldBe(2);
        (await ItemsAsync($"name={name}.xlsx&dataSourceId={sourceB}")).Select(i => i.GetProperty("relativePath").GetString())
            .ShouldBe([$"{name}.xlsx", $"z/{name}.XLSX"], ignoreOrder: true);
        // '_' and '%' in a pattern are literal, not SQL wildcards.
        (await ItemsAsync($"name={name.Replace('-', '_')}.xlsx")).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_commit_with_bad_items_is_a_400_naming_them_and_creates_nothing()
    {
        var (agent, source, _) = await ProtectedFolderAsync();
        foreach (var items in new CatalogEntry[][]
                 {
                     [File("/etc/passwd", 1, T1)],
                     [File("a/../b", 1, T1)],
                     [File("a", 1, T1), File("a", 2, T1)],
                     [File("a", -1, T1)],
                     [new CatalogEntry("a", (EntryKind)9, 1, T1)],
                 })
        {
            var (rp, commit) = await BackupAsync(agent, source, items);
            commit.StatusCode.ShouldBe(HttpStatusCode.BadRequest, await commit.Content.ReadAsStringAsync(Ct));
            var problem = await commit.Content.ReadFromJsonAsync<JsonElement>(Ct);
            problem.GetProperty("errors").EnumerateObject().ShouldContain(e => e.Name.StartsWith("items", StringComparison.Ordinal));
            await using var session = api.Store.QuerySession();
            (await session.Events.FetchStreamAsync(rp, token: Ct)).Select(e => e.Data).ShouldNotContain(e => e is RecoveryPointCreated);
            (await session.Events.FetchStreamAsync(ItemCatalog.StreamId(rp), token: Ct)).ShouldBeEmpty();
            api.Services.GetRequiredService<DiskStore>().HasManifest(rp).ShouldBeFalse();
            // The agent reports the failure, which ends the job, so the next backup of the folder can be claimed.
            (await _client.Http.SendAsync(ApiClient.AsAgent(HttpMethod.Post, $"/api/agents/{agent.AgentId}/recovery-points/{rp}/fail", agent.Credential,
                JsonContent.Create(new FailJobRequest("bad items"))), Ct)).StatusCode.ShouldBe(HttpStatusCode.NoContent);
        }
    }

    [Fact]
    public async Task Changes_against_the_latest_point_catalogue_what_every_item_would()
    {
        CatalogEntry[] before = [Folder("docs"), File("docs/report.docx", 100, T1), File("docs/notes.txt", 10, T1), File("photo.jpg", 5000, T1)];
        CatalogEntry[] after = [Folder("docs"), File("docs/report.docx", 120, T2), File("docs/notes.txt", 10, T1), File("docs/new.txt", 7, T2)];
        var whole = await ProtectedFolderAsync();
        await CommittedAsync(whole.Agent, whole.Source, before);
        await CommittedAsync(whole.Agent, whole.Source, after);

        var changed = await ProtectedFolderAsync();
        var first = await CommittedAsync(changed.Agent, changed.Source, before);
        var (second, commit) = await BackupAsync(changed.Agent, changed.Source, null,
            new CatalogChanges(first, [File("docs/report.docx", 120, T2), File("docs/new.txt", 7, T2)], ["docs/report.docx", "photo.jpg"]));
        commit.StatusCode.ShouldBe(HttpStatusCode.NoContent, await commit.Content.ReadAsStringAsync(Ct));

        // Item for item, version for version, the same catalog as a commit of every item gives.
        async Task<List<string>> Shape((EnrolAgentResponse Agent, Guid Source, string Root) folder) =>
            (await ItemsAsync($"under={Uri.EscapeDataString(folder.Root)}&limit=100"))
            .Select(i => $"{i.GetProperty("relativePath").GetString()}: " + string.Join(", ", Copies(i).Select(c => $"{c.Size} {c.Mtime:O}")))
            .ToList();
        var expected = await Shape(whole);
        expected.ShouldBe([
            $"docs: 0 {Kept(T1):O}, 0 {Kept(T1):O}", $"docs/new.txt: 7 {Kept(T2):O}", $"docs/notes.txt: 10 {Kept(T1):O}, 10 {Kept(T1):O}",
            $"docs/report.docx: 120 {Kept(T2):O}, 100 {Kept(T1):O}", $"photo.jpg: 5000 {Kept(T1):O}"]);
        (await Shape(changed)).ShouldBe(expected);
        await using var session = api.Store.QuerySession();
        var catalogued = (await session.Events.FetchStreamAsync(ItemCatalog.StreamId(second), token: Ct)).Select(e => e.Data).OfType<ItemsCatalogued>().ShouldHaveSingleItem();
        (catalogued.Ordinal, catalogued.Added.Count, catalogued.Removed.Count).ShouldBe((2, 2, 2));
    }

    [Fact]
    public async Task Changes_that_do_not_fit_the_catalog_are_a_409_asking_for_every_item_and_commit_nothing()
    {
        var (agent, source, root) = await ProtectedFolderAsync();
        var first = await CommittedAsync(agent, source, [File("a.txt", 1, T1), File("b.txt", 2, T1)]);
        var second = await CommittedAsync(agent, source, [File("a.txt", 1, T1), File("b.txt", 3, T2)]);
        var rp = await _client.RequestBackupAsync(source);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);

        foreach (var (changes, why) in new (CatalogChanges, string)[]
                 {
                     (new CatalogChanges(first, [File("c.txt", 4, T2)], []), $"not {first}"), // a base that is no longer the latest
                     (new CatalogChanges(Guid.NewGuid(), [File("c.txt", 4, T2)], []), "latest recovery point"),
                     (new CatalogChanges(second, [], ["gone.txt"]), "'gone.txt' is removed"), // not in the catalog
                     (new CatalogChanges(second, [File("a.txt", 9, T2)], []), "'a.txt' is added"), // held, and not removed
                 })
        {
            var (_, commit) = await CommitAsync(agent, rp, null, changes);
            commit.StatusCode.ShouldBe(HttpStatusCode.Conflict, await commit.Content.ReadAsStringAsync(Ct));
            var problem = await commit.Content.ReadFromJsonAsync<JsonElement>(Ct);
            problem.GetProperty("code").GetString().ShouldBe("item-catalog-base-changed");
            problem.GetProperty("detail").GetString()!.ShouldContain(why);
            await using var session = api.Store.QuerySession();
            (await session.Events.FetchStreamAsync(rp, token: Ct)).Select(e => e.Data).ShouldNotContain(e => e is RecoveryPointCreated);
            (await session.Events.FetchStreamAsync(ItemCatalog.StreamId(rp), token: Ct)).ShouldBeEmpty();
        }

        // The agent's way out: the same backup committed with every item.
        var (_, whole) = await CommitAsync(agent, rp, [File("a.txt", 1, T1), File("b.txt", 3, T2), File("c.txt", 4, T2)], null);
        whole.StatusCode.ShouldBe(HttpStatusCode.NoContent, await whole.Content.ReadAsStringAsync(Ct));
        Copies((await ItemsAsync($"path={Uri.EscapeDataString($"{root}/c.txt")}")).ShouldHaveSingleItem()).ShouldBe([(rp, 4, Kept(T2))]);
        Copies((await ItemsAsync($"path={Uri.EscapeDataString($"{root}/a.txt")}")).ShouldHaveSingleItem()).Select(c => c.Rp).ShouldBe([rp, second, first]);
    }

    [Fact]
    public async Task Malformed_changes_are_a_400_naming_them()
    {
        var (agent, source, _) = await ProtectedFolderAsync();
        var first = await CommittedAsync(agent, source, [File("a.txt", 1, T1)]);
        var rp = await _client.RequestBackupAsync(source);
        (await _client.PollAsync(agent)).StatusCode.ShouldBe(HttpStatusCode.OK);
        foreach (var (items, changes, field) in new (CatalogEntry[]?, CatalogChanges, string)[]
                 {
                     ([File("a.txt", 1, T1)], new CatalogChanges(first, [], []), "itemChanges"), // both at once
                     (null, new CatalogChanges(first, [], ["../etc/passwd"]), "itemChanges.Removed[0]"),
                     (null, new CatalogChanges(first, [], ["a.txt", "a.txt"]), "itemChanges.Removed[1]"),
                     (null, new CatalogChanges(first, [File("b", -1, T1)], []), "itemChanges.Added[0].Size"),
                     (null, new CatalogChanges(first, null!, []), "itemChanges.Added"),
                 })
        {
            var (_, commit) = await CommitAsync(agent, rp, items, changes);
            commit.StatusCode.ShouldBe(HttpStatusCode.BadRequest, await commit.Content.ReadAsStringAsync(Ct));
            var problem = await commit.Content.ReadFromJsonAsync<JsonElement>(Ct);
            problem.GetProperty("errors").EnumerateObject().Select(e => e.Name).ShouldContain(field);
        }
        await using var session = api.Store.QuerySession();
        (await session.Events.FetchStreamAsync(rp, token: Ct)).Select(e => e.Data).ShouldNotContain(e => e is RecoveryPointCreated);
        (await session.Events.FetchStreamAsync(ItemCatalog.StreamId(rp), token: Ct)).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("", "name")]
    [InlineData("path=relative/file.txt", "path")]
    [InlineData("under=docs", "under")]
    [InlineData("name=a/b", "name")]
    [InlineData("name=**", "name")]
    [InlineData("name=*.txt&limit=0", "limit")]
    [InlineData("name=*.txt&after=bm90LWEtY3Vyc29y", "after")]
    [InlineData("name=*.txt&dataSourceId=nope", "dataSourceId")]
    [InlineData("name=*.txt&asOf=2999-01-01T00:00:00Z", "asOf")]
    public async Task A_bad_search_is_a_400_naming_the_parameter(string query, string parameter)
    {
        var response = await _client.Http.GetAsync($"/api/items?{query}", Ct);
        response.StatusCode.ShouldBe(HttpStatusCode.BadRequest, await response.Content.ReadAsStringAsync(Ct));
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
        problem.GetProperty("errors").EnumerateObject().Select(e => e.Name).ShouldContain(parameter);
    }

    [Fact]
    public async Task Rebuilding_the_catalog_from_the_event_log_gives_the_same_answers()
    {
        var (agent, source, root) = await ProtectedFolderAsync();
        await CommittedAsync(agent, source, [File("k.txt", 1, T1), File("m.txt", 2, T1)]);
        var middle = await CommittedAsync(agent, source, [File("k.txt", 3, T2)]);
        await CommittedAsync(agent, source, [File("k.txt", 3, T2), File("m.txt", 4, T2)]);
        await api.CopyToVaultAsync(middle);
        var before = (await _client.GetJsonAsync($"/api/items?under={Uri.EscapeDataString(root)}")).GetRawText();

        using var daemon = await api.Store.BuildProjectionDaemonAsync();
        await daemon.RebuildProjectionAsync(ItemCatalogProjection.Name, TimeSpan.FromMinutes(2), Ct);

        (await _client.GetJsonAsync($"/api/items?under={Uri.EscapeDataString(root)}")).GetRawText().ShouldBe(before);
        before.ShouldContain("\"inVault\":true");
    }

    [Fact]
    public async Task A_restart_finds_the_catalog_tables_and_indexes_as_defined_and_changes_nothing()
    {
        await _client.EnrolAsync(); // the API has started and applied its schema
        // Throws when Weasel would alter anything, e.g. drop and rebuild the trigram index of a large table on each start.
        await api.Store.Storage.Database.AssertDatabaseMatchesConfigurationAsync(Ct);
    }
}
