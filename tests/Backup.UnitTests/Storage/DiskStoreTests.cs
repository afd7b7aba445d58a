using System.Security.Cryptography;
using Backup.Storage.Disk;
using Backup.Storage.Format;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Storage;

public sealed class DiskStoreTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly TempDirectory _work = new();
    private readonly DiskStore _store;

    public DiskStoreTests() => _store = new DiskStore(_temp.Path);

    public void Dispose()
    {
        _temp.Dispose();
        _work.Dispose();
    }

    /// <summary>A well-formed pack of about <paramref name="length"/> bytes (random blobs of at most 64 KiB).</summary>
    private async Task<(string Id, byte[] Bytes)> RandomPackAsync(int length)
    {
        var blobs = new List<byte[]>();
        for (var left = length - Pack.EmptyLength; left >= Pack.MinBlobLength + Pack.TrailerRecordSize; left -= blobs[^1].Length + Pack.TrailerRecordSize)
            blobs.Add(RandomNumberGenerator.GetBytes(Math.Min(64 << 10, left - Pack.TrailerRecordSize)));
        var (id, bytes, _) = await TestPacks.BuildAsync(_work.Path, blobs, TestContext.Current.CancellationToken);
        return (id, bytes);
    }

    private static (string Id, byte[] Bytes) Named(byte[] bytes) => (Convert.ToHexStringLower(SHA256.HashData(bytes)), bytes);

    private string[] FilesUnder(string folder) =>
        Directory.GetFiles(Path.Combine(_temp.Path, folder), "*", SearchOption.AllDirectories);

    [Fact]
    public void New_store_lays_out_its_folders()
    {
        Directory.Exists(Path.Combine(_temp.Path, "packs")).ShouldBeTrue();
        Directory.Exists(Path.Combine(_temp.Path, "manifests")).ShouldBeTrue();
        Directory.Exists(Path.Combine(_temp.Path, "tmp")).ShouldBeTrue();
        Directory.Exists(Path.Combine(_temp.Path, "keys")).ShouldBeTrue();
        _store.Root.ShouldBe(Path.GetFullPath(_temp.Path));
    }

    [Fact]
    public async Task Pack_with_the_right_hash_is_stored_and_reads_back_identically_with_the_entries_of_its_trailer()
    {
        var ct = TestContext.Current.CancellationToken;
        var (id, bytes, built) = await TestPacks.RandomAsync(_work.Path, 48, 64 << 10, ct);

        var (stored, entries) = await _store.PutPackAsync(id, new MemoryStream(bytes), 8 << 20, ct);

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
        entries.ShouldBe(built);
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Bytes_with_the_right_hash_that_are_not_a_pack_are_refused_and_nothing_is_kept()
    {
        var (id, bytes) = Named(RandomNumberGenerator.GetBytes(100_000));

        var e = await Should.ThrowAsync<InvalidDataException>(() =>
            _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, TestContext.Current.CancellationToken));

        e.Message.ShouldContain(id);
        e.Message.ShouldContain("not a valid pack");
        _store.HasPack(id).ShouldBeFalse();
        FilesUnder("packs").ShouldBeEmpty();
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Pack_with_a_damaged_trailer_but_a_matching_name_is_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        var (_, bytes, _) = await TestPacks.RandomAsync(_work.Path, 3, 1000, ct);
        bytes[^(Pack.MagicSize + 4)] ^= 0x01; // the blob count
        var (id, damaged) = Named(bytes);

        var e = await Should.ThrowAsync<InvalidDataException>(() => _store.PutPackAsync(id, new MemoryStream(damaged), 1 << 20, ct));

        e.Message.ShouldContain("not a valid pack");
        _store.HasPack(id).ShouldBeFalse();
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Pack_whose_bytes_do_not_match_its_name_is_refused_and_nothing_is_kept()
    {
        var (id, bytes) = await RandomPackAsync(100_000);
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
        var (id, bytes) = await RandomPackAsync((2 << 20) + 1000);

        var e = await Should.ThrowAsync<InvalidDataException>(() =>
            _store.PutPackAsync(id, new MemoryStream(bytes), bytes.Length - 1, TestContext.Current.CancellationToken));

        e.Message.ShouldContain("limit");
        _store.HasPack(id).ShouldBeFalse();
        FilesUnder("packs").ShouldBeEmpty();
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Pack_exactly_at_the_limit_is_accepted()
    {
        var (id, bytes) = await RandomPackAsync(4096);

        var (stored, _) = await _store.PutPackAsync(id, new MemoryStream(bytes), bytes.Length, TestContext.Current.CancellationToken);

        stored.Bytes.ShouldBe(bytes.Length);
        _store.HasPack(id).ShouldBeTrue();
    }

    [Fact]
    public async Task Same_pack_twice_is_already_present_and_keeps_one_copy()
    {
        var (id, bytes) = await RandomPackAsync(50_000);
        var ct = TestContext.Current.CancellationToken;

        var (first, _) = await _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, ct);
        var (second, entries) = await _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, ct);

        first.AlreadyPresent.ShouldBeFalse();
        second.AlreadyPresent.ShouldBeTrue();
        second.Bytes.ShouldBe(bytes.Length);
        entries.ShouldNotBeEmpty(); // the caller indexes what it sent either way
        FilesUnder("packs").ShouldHaveSingleItem();
        FilesUnder("tmp").ShouldBeEmpty();
        (await File.ReadAllBytesAsync(_store.PackPath(id), ct)).ShouldBe(bytes);
    }

    [Fact]
    public async Task Corrupt_copy_of_a_stored_pack_does_not_touch_the_good_one()
    {
        var (id, bytes) = await RandomPackAsync(50_000);
        var ct = TestContext.Current.CancellationToken;
        await _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, ct);
        var corrupt = (byte[])bytes.Clone();
        corrupt[0] ^= 0xFF;

        await Should.ThrowAsync<InvalidDataException>(() => _store.PutPackAsync(id, new MemoryStream(corrupt), 1 << 20, ct));

        (await File.ReadAllBytesAsync(_store.PackPath(id), ct)).ShouldBe(bytes);
    }

    [Fact]
    public async Task Zero_bytes_are_not_a_pack()
    {
        const string emptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

        await Should.ThrowAsync<InvalidDataException>(() => _store.PutPackAsync(emptySha, new MemoryStream(), 1, TestContext.Current.CancellationToken));

        _store.HasPack(emptySha).ShouldBeFalse();
        FilesUnder("tmp").ShouldBeEmpty();
    }

    [Fact]
    public async Task Pack_without_blobs_is_stored_and_holds_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        var (id, bytes, _) = await TestPacks.BuildAsync(_work.Path, [], ct);

        var (stored, entries) = await _store.PutPackAsync(id, new MemoryStream(bytes), 1 << 20, ct);

        stored.Bytes.ShouldBe(Pack.EmptyLength);
        entries.ShouldBeEmpty();
        _store.PackLength(id).ShouldBe(Pack.EmptyLength);
    }

    [Fact]
    public async Task Key_file_is_created_once_and_only_replaced_explicitly()
    {
        var ct = TestContext.Current.CancellationToken;

        (await _store.ReadKeyFileAsync(ct)).ShouldBeNull();
        (await _store.TryCreateKeyFileAsync("first"u8.ToArray(), ct)).ShouldBeTrue();
        (await _store.TryCreateKeyFileAsync("second"u8.ToArray(), ct)).ShouldBeFalse();
        (await _store.ReadKeyFileAsync(ct)).ShouldBe("first"u8.ToArray());
        await _store.ReplaceKeyFileAsync("third"u8.ToArray(), ct);

        (await _store.ReadKeyFileAsync(ct)).ShouldBe("third"u8.ToArray());
        FilesUnder("tmp").ShouldBeEmpty();
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
