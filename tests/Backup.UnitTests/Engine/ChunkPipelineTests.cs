using System.Security.Cryptography;
using Backup.Agent.BackingUp;
using Backup.Storage.Blobs;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Backup.UnitTests.Support;

namespace Backup.UnitTests.Engine;

/// <summary>The write side of a backup: chunks in, sealed blobs packed into packs named by their SHA-256, uploaded once each.</summary>
public sealed class ChunkPipelineTests : IDisposable
{
    private readonly TempDirectory _scratch = new();
    private readonly MasterKeys _keys = MasterKeys.Generate();
    private readonly Dictionary<string, byte[]> _uploaded = new(StringComparer.Ordinal);
    private readonly HashSet<ChunkId> _known = [];

    public void Dispose()
    {
        _keys.Dispose();
        _scratch.Dispose();
    }

    private ChunkPipeline Pipeline(long packTarget, UploadPack? upload = null) =>
        new(_keys, _known, _scratch.Path, packTarget, upload ?? (async (file, packId, chunks, ct) =>
        {
            var bytes = await File.ReadAllBytesAsync(file, ct);
            Pack.ReadIndex(new MemoryStream(bytes)).Count.ShouldBe(chunks);
            lock (_uploaded) _uploaded.Add(packId, bytes);
        }), ct: TestContext.Current.CancellationToken);

    /// <summary>Every stored chunk, opened from the uploaded packs through their trailers.</summary>
    private Dictionary<ChunkId, byte[]> Stored()
    {
        using var envelope = new BlobEnvelope(_keys);
        var chunks = new Dictionary<ChunkId, byte[]>();
        var blob = new byte[Pack.MaxPlainLength];
        foreach (var bytes in _uploaded.Values)
            foreach (var e in Pack.ReadIndex(new MemoryStream(bytes)))
            {
                var length = envelope.OpenBlob(bytes.AsSpan((int)e.Offset, e.Length), blob, "blob");
                (e.PlainOffset + e.PlainLength).ShouldBeLessThanOrEqualTo(length);
                var plain = blob.AsSpan(e.PlainOffset, e.PlainLength);
                envelope.Verify(plain, e.Id);
                chunks.Add(e.Id, plain.ToArray());
            }
        return chunks;
    }

    [Fact]
    public async Task Every_pack_is_named_by_the_sha256_of_its_bytes_and_stays_within_the_target_plus_one_blob()
    {
        const long target = 256 << 10;
        await using var pipeline = Pipeline(target);
        foreach (var size in new[] { 1, 300_000, 70_000, 1_000_000, 5, 200_000, 90_000 })
            await pipeline.AddAsync(RandomNumberGenerator.GetBytes(size));
        var totals = await pipeline.CompleteAsync();

        _uploaded.Count.ShouldBeGreaterThan(1);
        totals.Packs.ShouldBe(_uploaded.Count);
        totals.PackBytes.ShouldBe(_uploaded.Values.Sum(b => (long)b.Length));
        foreach (var (packId, bytes) in _uploaded)
        {
            packId.ShouldBe(Convert.ToHexStringLower(SHA256.HashData(bytes)));
            PackId.IsValid(packId).ShouldBeTrue();
            // A pack is sealed as soon as it reaches the target, so only its last blob (and the trailer) may lie beyond it.
            var entries = Pack.ReadIndex(new MemoryStream(bytes));
            entries[^1].Offset.ShouldBeLessThan(target);
        }
    }

    [Fact]
    public async Task Chunks_come_back_from_the_pack_trailers_byte_for_byte_under_their_ids()
    {
        var chunks = new[] { RandomNumberGenerator.GetBytes(100_000), new byte[2 << 20], "text text text text text"u8.ToArray(), RandomNumberGenerator.GetBytes(1) };
        await using var pipeline = Pipeline(1 << 20);
        var ids = new List<ChunkId>();
        foreach (var chunk in chunks) ids.Add(await pipeline.AddAsync(chunk));
        var totals = await pipeline.CompleteAsync();

        var stored = Stored();
        stored.Count.ShouldBe(chunks.Length);
        for (var i = 0; i < chunks.Length; i++)
        {
            ids[i].ShouldBe(_keys.CreateChunkIdHasher().Compute(chunks[i]));
            stored[ids[i]].ShouldBe(chunks[i]);
        }
        totals.ChunksNew.ShouldBe(chunks.Length);
        totals.PlainBytesNew.ShouldBe(chunks.Sum(c => (long)c.Length));
        totals.SealedBytesNew.ShouldBeLessThan(totals.PlainBytesNew); // the zeros compress
    }

    /// <summary>Text-like bytes (words drawn from a small vocabulary), as small files of documents or source code hold.</summary>
    private static byte[] Words(Random random, int length)
    {
        string[] vocabulary = ["backup", "restore", "vault", "policy", "agent", "chunk", "pack", "index", "server", "point", "the", "of", "a"];
        var text = new System.Text.StringBuilder();
        while (text.Length < length) text.Append(vocabulary[random.Next(vocabulary.Length)]).Append(random.Next(8) == 0 ? ".\n" : " ");
        return System.Text.Encoding.ASCII.GetBytes(text.ToString(0, length));
    }

    [Fact]
    public async Task Small_chunks_are_sealed_together_yet_each_comes_back_under_its_own_id()
    {
        var random = new Random(2026);
        var small = Enumerable.Range(0, 300).Select(i => Words(random, 1000 + random.Next(8000))).ToArray();
        var large = RandomNumberGenerator.GetBytes(ChunkPipeline.GroupBelow);
        await using var pipeline = Pipeline(8 << 20);
        var ids = new List<ChunkId>();
        foreach (var chunk in small.Take(150).Append(large).Concat(small.Skip(150))) ids.Add(await pipeline.AddAsync(chunk));
        var totals = await pipeline.CompleteAsync();

        var entries = _uploaded.Values.SelectMany(b => Pack.ReadIndex(new MemoryStream(b))).ToList();
        entries.Count.ShouldBe(301);
        var blobs = entries.GroupBy(e => e.Offset).ToList();
        // ~1.5 MB of small chunks in groups of about a megabyte, and the large chunk in a blob of its own.
        blobs.Count.ShouldBe(3);
        blobs.Single(b => b.Any(e => e.PlainLength == large.Length)).Count().ShouldBe(1);
        var stored = Stored();
        foreach (var (chunk, id) in small.Take(150).Append(large).Concat(small.Skip(150)).Zip(ids)) stored[id].ShouldBe(chunk);
        totals.ChunksNew.ShouldBe(301);

        // Compressed together the small chunks take less room than each sealed on its own.
        using var envelope = new BlobEnvelope(_keys);
        var alone = small.Sum(c => (long)envelope.Seal(c).Length);
        (totals.SealedBytesNew - large.Length - BlobEnvelope.MaxOverhead).ShouldBeLessThan(alone * 95 / 100);
    }

    [Fact]
    public async Task Chunk_seen_twice_or_already_on_the_server_is_stored_once_or_not_at_all()
    {
        var onServer = RandomNumberGenerator.GetBytes(5000);
        _known.Add(_keys.CreateChunkIdHasher().Compute(onServer));
        var twice = RandomNumberGenerator.GetBytes(7000);
        await using var pipeline = Pipeline(1 << 20);

        var first = await pipeline.AddAsync(twice);
        await pipeline.AddAsync(onServer);
        var second = await pipeline.AddAsync(twice);
        var totals = await pipeline.CompleteAsync();

        second.ShouldBe(first);
        totals.ChunksSeen.ShouldBe(3);
        totals.ChunksNew.ShouldBe(1);
        Stored().Keys.ShouldBe([first]);
        _known.ShouldContain(first); // the next run knows it too
    }

    [Fact]
    public async Task Chunks_hashed_beside_the_reader_are_stored_like_chunks_added_in_one_step()
    {
        var onServer = RandomNumberGenerator.GetBytes(300_000);
        _known.Add(_keys.CreateChunkIdHasher().Compute(onServer));
        var fresh = Enumerable.Range(0, 6).Select(_ => RandomNumberGenerator.GetBytes(700_000)).ToArray();
        var input = new[] { fresh[0], onServer, fresh[1], fresh[0], fresh[2], fresh[3], fresh[4], fresh[5] };
        await using var pipeline = Pipeline(1 << 20);

        // As the archiver reads a large file: the next chunk begins before the previous one ends.
        var ids = new List<ChunkId>();
        ChunkPipeline.PendingChunk? pending = null;
        foreach (var chunk in input)
        {
            var previous = pending;
            pending = pipeline.BeginAdd(chunk);
            if (previous is not null) ids.Add(await pipeline.EndAddAsync(previous));
        }
        ids.Add(await pipeline.EndAddAsync(pending!));
        var abandoned = pipeline.BeginAdd(RandomNumberGenerator.GetBytes(1000)); // a read that stops half-way gives its chunk back
        await pipeline.DiscardAsync(abandoned);
        var totals = await pipeline.CompleteAsync();

        ids.ShouldBe(input.Select(c => _keys.CreateChunkIdHasher().Compute(c)));
        totals.ChunksSeen.ShouldBe(input.Length);
        totals.ChunksNew.ShouldBe(fresh.Length); // the known chunk and the repeat are not stored
        var stored = Stored();
        stored.Count.ShouldBe(fresh.Length);
        foreach (var chunk in fresh) stored[_keys.CreateChunkIdHasher().Compute(chunk)].ShouldBe(chunk);
    }

    [Fact]
    public async Task Nothing_new_means_no_pack()
    {
        var chunk = RandomNumberGenerator.GetBytes(5000);
        _known.Add(_keys.CreateChunkIdHasher().Compute(chunk));
        await using var pipeline = Pipeline(1 << 20);

        await pipeline.AddAsync(chunk);
        var totals = await pipeline.CompleteAsync();

        totals.Packs.ShouldBe(0);
        _uploaded.ShouldBeEmpty();
        Directory.GetFileSystemEntries(_scratch.Path).ShouldBeEmpty();
    }

    [Fact]
    public async Task Scratch_pack_files_are_removed_once_uploaded()
    {
        await using var pipeline = Pipeline(1 << 20);
        for (var i = 0; i < 8; i++) await pipeline.AddAsync(RandomNumberGenerator.GetBytes(600_000)); // not grouped: a blob each
        await pipeline.CompleteAsync();

        _uploaded.Count.ShouldBe(4);
        Directory.GetFileSystemEntries(_scratch.Path).ShouldBeEmpty();
    }

    [Fact]
    public async Task Failed_upload_surfaces_as_a_pack_seal_exception_and_leaves_no_scratch_file()
    {
        var pipeline = Pipeline(64 << 10, (_, _, _, _) => throw new IOException("server went away"));
        var e = await Should.ThrowAsync<PackSealException>(async () =>
        {
            for (var i = 0; i < 50; i++) await pipeline.AddAsync(RandomNumberGenerator.GetBytes(50_000));
            await pipeline.CompleteAsync();
        });
        await pipeline.DisposeAsync();

        e.InnerException.ShouldBeOfType<IOException>().Message.ShouldBe("server went away");
        Directory.GetFileSystemEntries(_scratch.Path).ShouldBeEmpty();
        _known.ShouldBeEmpty(); // nothing the failed run packed may count as stored
    }

    [Fact]
    public async Task After_a_failed_upload_nothing_more_is_accepted()
    {
        await using var pipeline = Pipeline(1 << 20, (_, _, _, _) => throw new IOException("server went away"));
        await pipeline.AddAsync(RandomNumberGenerator.GetBytes(1000));

        await Should.ThrowAsync<PackSealException>(() => pipeline.CompleteAsync());

        await Should.ThrowAsync<PackSealException>(async () => await pipeline.AddAsync(RandomNumberGenerator.GetBytes(10)));
        Directory.GetFileSystemEntries(_scratch.Path).ShouldBeEmpty();
    }
}
