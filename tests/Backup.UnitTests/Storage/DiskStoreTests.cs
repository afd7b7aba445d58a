using System.Security.Cryptography;
using Backup.Storage.Disk;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Storage;

public sealed class DiskStoreTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly DiskStore _store;

    public DiskStoreTests() => _store = new DiskStore(_temp.Path);

    public void Dispose() => _temp.Dispose();

    private static (string Id, byte[] Bytes) RandomPack(int length)
    {
        var bytes = RandomNumberGenerator.GetBytes(length);
        return (Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes);
    }

    private string[] FilesUnder(string folder) =>
        Directory.GetFiles(Path.Combine(_temp.Path, folder), "*", SearchOption.AllDirectories);

    [Fact]
    public void New_store_lays_out_its_folders()
    {
        Directory.Exists(Path.Combine(_temp.Path, "packs")).ShouldBeTrue();
        Directory.Exists(Path.Combine(_temp.Path, "manifests")).ShouldBeTrue();
        Directory.Exists(Path.Combine(_temp.Path, "tmp")).ShouldBeTrue();
        _store.Root.ShouldBe(Path.GetFullPath(_temp.Path));
    }

    [Fact]
    public async Task Pack_with_the_right_hash_is_stored_and_reads_back_identically()
    {
        var (id, bytes) = RandomPack(3 << 20);

        var stored = await _store.PutPackAsync(id, new MemoryStream(bytes), 8 << 20, TestContext.Current.CancellationToken);

        stored.PackId.ShouldBe(id);
        stored.Bytes.ShouldBe(bytes.Length);
        stored.AlreadyPresent.ShouldBeFalse();
        _store.HasPack(id).ShouldBeTrue();
        _store.PackLength(id).ShouldBe(bytes.Length);
        _store.PackPath(id).ShouldBe(Path.Combine(_temp.Path, "packs", id[..2], id));
        await using var read = _store.OpenPack(id);
        var copy = new MemoryStream();
        await read.CopyToAsync(copy, TestContext.Current.CancellationToken);
        copy.ToArray().ShouldBe(bytes);
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Pack_whose_bytes_do_not_match_its_name_is_refused_and_nothing_is_kept()
    {
        var (id, bytes) = RandomPack(100_000);
        bytes[5000] ^= 0x01;

        var e = await Should.ThrowAsync<InvalidDataException>(() =>
            _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, TestContext.Current.CancellationToken));

        e.Message.ShouldContain(id);
        _store.HasPack(id).ShouldBeFalse();
        FilesUnder("packs").ShouldBeEmpty();
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Pack_larger_than_the_limit_is_refused_and_nothing_is_kept()
    {
        var (id, bytes) = RandomPack((2 << 20) + 1);

        var e = await Should.ThrowAsync<InvalidDataException>(() =>
            _store.PutPackAsync(id, new MemoryStream(bytes), 2 << 20, TestContext.Current.CancellationToken));

        e.Message.ShouldContain("limit");
        _store.HasPack(id).ShouldBeFalse();
        FilesUnder("packs").ShouldBeEmpty();
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Pack_exactly_at_the_limit_is_accepted()
    {
        var (id, bytes) = RandomPack(4096);

        var stored = await _store.PutPackAsync(id, new MemoryStream(bytes), 4096, TestContext.Current.CancellationToken);

        stored.Bytes.ShouldBe(4096);
        _store.HasPack(id).ShouldBeTrue();
    }

    [Fact]
    public async Task Same_pack_twice_is_already_present_and_keeps_one_copy()
    {
        var (id, bytes) = RandomPack(50_000);
        var ct = TestContext.Current.CancellationToken;

        var first = await _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, ct);
        var second = await _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, ct);

        first.AlreadyPresent.ShouldBeFalse();
        second.AlreadyPresent.ShouldBeTrue();
        second.Bytes.ShouldBe(bytes.Length);
        FilesUnder("packs").ShouldHaveSingleItem();
        FilesUnder("tmp").ShouldBeEmpty();
        (await File.ReadAllBytesAsync(_store.PackPath(id), ct)).ShouldBe(bytes);
    }

    [Fact]
    public async Task Corrupt_copy_of_a_stored_pack_does_not_touch_the_good_one()
    {
        var (id, bytes) = RandomPack(50_000);
        var ct = TestContext.Current.CancellationToken;
        await _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, ct);
        var corrupt = (byte[])bytes.Clone();
        corrupt[0] ^= 0xFF;

        await Should.ThrowAsync<InvalidDataException>(() => _store.PutPackAsync(id, new MemoryStream(corrupt), 1 << 20, ct));

        (await File.ReadAllBytesAsync(_store.PackPath(id), ct)).ShouldBe(bytes);
    }

    [Fact]
    public async Task Empty_pack_is_stored_under_the_hash_of_nothing()
    {
        const string emptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

        var stored = await _store.PutPackAsync(emptySha, new MemoryStream(), 1, TestContext.Current.CancellationToken);

        stored.Bytes.ShouldBe(0);
        _store.PackLength(emptySha).ShouldBe(0);
    }

    [Theory]
    [InlineData("../../../../etc/passwd")]
    [InlineData("ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789")]
    [InlineData("")]
    public void Names_that_are_not_pack_ids_never_become_paths(string packId)
    {
        Should.Throw<ArgumentException>(() => _store.PackPath(packId));
        Should.Throw<ArgumentException>(() => _store.HasPack(packId));
    }

    [Fact]
    public async Task Manifest_is_stored_and_read_back_and_replaced_on_rewrite()
    {
        var id = Guid.NewGuid();
        var ct = TestContext.Current.CancellationToken;

        _store.HasManifest(id).ShouldBeFalse();
        await _store.PutManifestAsync(id, "{\"v\":1}"u8.ToArray(), ct);
        await _store.PutManifestAsync(id, "{\"v\":2}"u8.ToArray(), ct);

        _store.HasManifest(id).ShouldBeTrue();
        (await _store.ReadManifestAsync(id, ct)).ShouldBe("{\"v\":2}"u8.ToArray());
        FilesUnder("tmp").ShouldBeEmpty();
    }
}
