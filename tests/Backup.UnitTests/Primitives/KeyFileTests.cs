using System.Text;
using System.Text.Json;
using Backup.Storage.Blobs;
using Backup.Storage.Crypto;

namespace Backup.UnitTests.Primitives;

/// <summary>One key file made once per class: Argon2id at the real cost (~0.2 s a derivation), so each test derives sparingly.</summary>
public sealed class KeyFileFixture : IDisposable
{
    public const string Passphrase = "correct horse battery staple";

    public KeyFileFixture() => File = KeyFile.Create(Passphrase, out Keys);

    public KeyFile File { get; }

    public readonly MasterKeys Keys;

    public void Dispose() => Keys.Dispose();
}

public sealed class KeyFileTests(KeyFileFixture fixture) : IClassFixture<KeyFileFixture>
{
    private const string NewPassphrase = "a different passphrase, also long";

    [Fact]
    public void The_right_passphrase_unlocks_the_same_keys_from_the_stored_json()
    {
        var stored = KeyFile.FromJson(fixture.File.ToJsonBytes());

        using var keys = stored.Unlock(KeyFileFixture.Passphrase);

        keys.SameKeysAs(fixture.Keys).ShouldBeTrue();
    }

    [Fact]
    public void The_key_file_is_written_as_the_reflection_serializer_wrote_it()
    {
        // Key files written before the agent went native (reflection, indented) stay byte for byte the same format.
        fixture.File.ToJsonBytes().ShouldBe(JsonSerializer.SerializeToUtf8Bytes(fixture.File, new JsonSerializerOptions { WriteIndented = true }));
    }

    [Fact]
    public void A_wrong_passphrase_is_reported_as_such_and_changes_nothing()
    {
        var before = fixture.File.ToJsonBytes();

        var error = Should.Throw<WrongPassphraseException>(() => fixture.File.Unlock("correct horse battery stapler"));

        error.Message.ShouldContain("Wrong passphrase");
        fixture.File.ToJsonBytes().ShouldBe(before);
    }

    [Theory]
    [InlineData("")]
    [InlineData("short")]
    [InlineData("fifteen chars!!")]
    public void A_passphrase_under_16_characters_is_refused_before_any_work(string passphrase)
    {
        var error = Should.Throw<ArgumentException>(() => KeyFile.Create(passphrase, out _));
        error.Message.ShouldContain("at least 16 characters");

        Should.Throw<ArgumentException>(() => fixture.File.Rewrap(KeyFileFixture.Passphrase, passphrase));
    }

    [Fact]
    public void Passphrase_length_counts_characters_not_utf16_units()
    {
        // 8 emoji are 16 UTF-16 units but 8 characters.
        Should.Throw<ArgumentException>(() => KeyFile.ValidatePassphrase(string.Concat(Enumerable.Repeat("🔑", 8))));
        Should.Throw<ArgumentException>(() => KeyFile.ValidatePassphrase(new string(' ', 20)));
        KeyFile.ValidatePassphrase("sixteen chars ok");
    }

    [Fact]
    public void Rewrapping_changes_the_passphrase_and_keeps_old_data_readable()
    {
        byte[] blob;
        ChunkId id;
        var chunk = TestData.Mixed(5, 200_000);
        using (var envelope = new BlobEnvelope(fixture.Keys))
        {
            id = envelope.ComputeId(chunk);
            blob = envelope.Seal(chunk);
        }

        var rewrapped = fixture.File.Rewrap(KeyFileFixture.Passphrase, NewPassphrase);

        rewrapped.Salt.ShouldNotBe(fixture.File.Salt);
        rewrapped.Kdf.ShouldBe(fixture.File.Kdf);
        using var keys = KeyFile.FromJson(rewrapped.ToJsonBytes()).Unlock(NewPassphrase);
        keys.SameKeysAs(fixture.Keys).ShouldBeTrue();
        using var reader = new BlobEnvelope(keys);
        reader.Open(blob, id, chunk.Length).ShouldBe(chunk);
        Should.Throw<WrongPassphraseException>(() => rewrapped.Unlock(KeyFileFixture.Passphrase));
    }

    [Fact]
    public void Rewrapping_with_the_wrong_old_passphrase_fails_and_produces_nothing() =>
        Should.Throw<WrongPassphraseException>(() => fixture.File.Rewrap("not the passphrase at all", NewPassphrase));

    [Fact]
    public void The_key_file_holds_no_key_in_the_clear()
    {
        var json = Encoding.UTF8.GetString(fixture.File.ToJsonBytes());
        var material = fixture.Keys.Material.ToArray();

        using var document = JsonDocument.Parse(json);
        document.RootElement.GetProperty("version").GetInt32().ShouldBe(1);
        document.RootElement.GetProperty("kdf").GetProperty("algorithm").GetString().ShouldBe("argon2id");
        document.RootElement.GetProperty("kdf").GetProperty("memoryKiB").GetInt64().ShouldBe(65536);
        document.RootElement.GetProperty("kdf").GetProperty("passes").GetInt64().ShouldBe(3);
        Convert.FromBase64String(document.RootElement.GetProperty("salt").GetString()!).Length.ShouldBe(16);
        Convert.FromBase64String(document.RootElement.GetProperty("wrappedKeys").GetString()!).Length.ShouldBe(12 + 64 + 16);
        json.ShouldNotContain(Convert.ToBase64String(material[..32]));
        json.ShouldNotContain(Convert.ToHexStringLower(material[..32]));
        json.ShouldNotContain(Convert.ToBase64String(material[32..]));
    }

    [Fact]
    public void Master_keys_cannot_be_serialized_or_printed()
    {
        JsonSerializer.Serialize(fixture.Keys).ShouldBe("{}");
        fixture.Keys.ToString().ShouldBe("MasterKeys(redacted)");
        using var cipher = fixture.Keys.CreateCipher();
        cipher.ToString().ShouldNotContain(Convert.ToHexStringLower(fixture.Keys.Material[..32]));
    }

    [Fact]
    public void A_key_file_asking_for_absurd_cost_is_refused_before_deriving()
    {
        var hostile = fixture.File with { Kdf = fixture.File.Kdf with { MemoryKiB = 64L * 1024 * 1024 } };
        Should.Throw<InvalidDataException>(() => hostile.Unlock(KeyFileFixture.Passphrase));

        var incomplete = KeyFile.FromJson("""{ "version": 1, "kdf": { "algorithm": "argon2id", "memoryKiB": 65536, "passes": 3, "parallelism": 1 } }"""u8);
        Should.Throw<InvalidDataException>(() => incomplete.Unlock(KeyFileFixture.Passphrase));

        var unknown = fixture.File with { Version = 2 };
        Should.Throw<InvalidDataException>(() => unknown.Unlock(KeyFileFixture.Passphrase)).Message.ShouldContain("version 2");
    }
}
