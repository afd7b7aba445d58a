using System.Net;
using System.Net.Http.Json;
using Azure.Storage.Blobs;
using Backup.IntegrationTests.Infrastructure;
using Backup.Storage.Crypto;
using static Backup.IntegrationTests.Infrastructure.Rejections;

namespace Backup.IntegrationTests.Api;

/// <summary>
/// The repository key as an administrator handles it: created once with a passphrase, kept on disk and in the vault,
/// re-wrapped on a passphrase change without touching the master keys; every refusal changes nothing.
/// Each test gets a server of its own, since a server has exactly one key.
/// </summary>
public sealed class RepositoryKeyTests : IAsyncLifetime
{
    private const string First = "first passphrase, long enough";
    private const string Second = "second passphrase, also long";
    private readonly ApiFactory _api = new();
    private ApiClient _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        await _api.InitializeAsync();
        _client = new ApiClient(_api.CreateClient());
    }

    public ValueTask DisposeAsync() => _api.DisposeAsync();

    /// <summary>The change as an admin sends it; the PIN is issued beforehand (issuing it is an event of its own).</summary>
    private Task<HttpResponseMessage> ChangePassphraseAsync(string current, string next, string? pin)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/repository/key/passphrase")
        {
            Content = JsonContent.Create(new { currentPassphrase = current, newPassphrase = next }),
        };
        if (pin is not null) request.Headers.Add("X-Security-Pin", pin);
        return _client.Http.SendAsync(request, Ct);
    }

    private string DiskKeyFile => Path.Combine(_api.DiskStore, "keys", "repository.json");

    private async Task<byte[]> VaultKeyFileAsync() =>
        (await new BlobContainerClient(TestServices.Vault, _api.VaultContainer).GetBlobClient("keys/repository.json").DownloadContentAsync(Ct)).Value.Content.ToArray();

    [Fact]
    public async Task The_key_is_created_once_and_kept_identically_on_disk_and_in_the_vault()
    {
        (await _client.Http.GetAsync("/api/repository/key", Ct)).StatusCode.ShouldBe(HttpStatusCode.NotFound);
        await _client.CreateRepositoryKeyAsync(First);

        var disk = File.ReadAllBytes(DiskKeyFile);
        (await VaultKeyFileAsync()).ShouldBe(disk);
        System.Text.Encoding.UTF8.GetString(disk).ShouldNotContain(First);
        using var keys = KeyFile.FromJson(disk).Unlock(First);
        var info = await _client.GetJsonAsync("/api/repository/key");
        info.GetProperty("kdf").GetString().ShouldBe("argon2id");
        info.GetProperty("keyFileSha256").GetString().ShouldBe(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(disk)));

        var again = await _api.ShouldBeRejectedAsync(() => _client.Http.PutAsJsonAsync("/api/repository/key", new { passphrase = Second }, Ct), HttpStatusCode.Conflict);
        again.GetProperty("detail").GetString()!.ShouldContain("already has a key");
        File.ReadAllBytes(DiskKeyFile).ShouldBe(disk);
    }

    [Theory]
    [InlineData("too short")]
    [InlineData("                    ")]
    [InlineData("")]
    public async Task A_weak_passphrase_is_a_400_naming_it_and_no_key_is_made(string passphrase)
    {
        var problem = await _api.ShouldBeRejectedAsync(() => _client.Http.PutAsJsonAsync("/api/repository/key", new { passphrase }, Ct), HttpStatusCode.BadRequest);
        ShouldName(problem, "passphrase");
        if (passphrase.Trim().Length > 0) problem.ToString().ShouldNotContain(passphrase, Case.Sensitive, "an error must not echo the passphrase");
        File.Exists(DiskKeyFile).ShouldBeFalse();
    }

    [Fact]
    public async Task Changing_the_passphrase_rewraps_the_same_keys_and_the_old_one_stops_working()
    {
        await _client.CreateRepositoryKeyAsync(First);
        var before = KeyFile.FromJson(File.ReadAllBytes(DiskKeyFile));
        using var original = before.Unlock(First);

        var response = await ChangePassphraseAsync(First, Second, await _client.PinAsync());
        response.StatusCode.ShouldBe(HttpStatusCode.OK, await response.Content.ReadAsStringAsync(Ct));

        var after = File.ReadAllBytes(DiskKeyFile);
        (await VaultKeyFileAsync()).ShouldBe(after);
        using (var rewrapped = KeyFile.FromJson(after).Unlock(Second)) rewrapped.SameKeysAs(original).ShouldBeTrue("no data may need rewriting");
        Should.Throw<WrongPassphraseException>(() => KeyFile.FromJson(after).Unlock(First));
        (await _client.GetJsonAsync("/api/repository/key")).GetProperty("passphraseChanges").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task A_wrong_current_passphrase_changes_nothing()
    {
        await _client.CreateRepositoryKeyAsync(First);
        var disk = File.ReadAllBytes(DiskKeyFile);

        var pin = await _client.PinAsync();
        var problem = await _api.ShouldBeRejectedAsync(
            () => ChangePassphraseAsync("not the first passphrase!", Second, pin),
            HttpStatusCode.UnprocessableEntity);
        problem.GetProperty("detail").GetString()!.ShouldContain("current passphrase is wrong");
        File.ReadAllBytes(DiskKeyFile).ShouldBe(disk);
        (await VaultKeyFileAsync()).ShouldBe(disk);

        // The right passphrase without the second factor changes nothing either.
        var noPin = await _api.ShouldBeRejectedAsync(() => ChangePassphraseAsync(First, Second, pin: null), HttpStatusCode.Forbidden);
        noPin.GetProperty("detail").GetString()!.ShouldContain("X-Security-Pin");
        File.ReadAllBytes(DiskKeyFile).ShouldBe(disk);
    }

    [Fact]
    public async Task Changing_the_passphrase_before_any_key_exists_is_a_404_and_a_weak_new_one_a_400()
    {
        var pin = await _client.PinAsync();
        await _api.ShouldBeRejectedAsync(() => ChangePassphraseAsync(First, Second, pin), HttpStatusCode.NotFound);
        await _client.CreateRepositoryKeyAsync(First);
        ShouldName(await _api.ShouldBeRejectedAsync(
            () => ChangePassphraseAsync(First, "short", pin),
            HttpStatusCode.BadRequest), "newPassphrase");
    }
}
